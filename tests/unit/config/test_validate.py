"""Validation findings: each names file:line:col, the offending value and the fix."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scheduler.config import load_config

if TYPE_CHECKING:
    from tests.unit.config.conftest import Errors, Load, Write


def schedule(*lines: str, name: str = "digest") -> str:
    """A `schedules:` section with one schedule (line 11 is `schedules:`, line 12 the name, 13 on its keys)."""
    return "schedules:\n" + f"  {name}:\n" + "".join(f"    {line}\n" for line in lines)


VALID = ("cron: '0 * * * *'", "cohort: { sql: select 1 }", "queue: plain")


def test_unknown_key_suggests_the_closest_field(write: Write, errors: Errors) -> None:
    """An unknown key names the closest allowed key and lists them all."""
    path = write(schedule(*VALID, "singelton_key: 'x:{key}'"))
    assert errors(path) == [
        f"{path}:16:5: CFG004 error: unknown key 'singelton_key' in schedules.digest (did you mean "
        "'singleton_key'?); allowed keys: catch_up, cohort, cron, enabled, expected_drops, expire_in, lane, "
        "priority, queue, retry_delay, retry_limit, singleton_key, stagger, timezone"
    ]


def test_unknown_top_level_key_suggests_the_section(write: Write, errors: Errors) -> None:
    """A misspelt section name is an unknown key at the top level, with a suggestion."""
    path = write("schedule:\n  digest: {}\n")
    assert errors(path) == [
        f"{path}:11:1: CFG004 error: unknown key 'schedule' at the top level (did you mean 'schedules'?); "
        "allowed keys: aliases, databases, lanes, queues, schedules, version, watchers"
    ]


def test_cron_with_four_fields_is_rejected(write: Write, errors: Errors) -> None:
    """A cron expression without 5 fields says how many it has and which 5 to write."""
    path = write(schedule("cron: '0 * * *'", *VALID[1:]))
    assert errors(path) == [
        f"{path}:13:11: CFG005 error: schedules.digest.cron: cron '0 * * *' has 4 fields, not 5; write 5 "
        "fields: minute (0-59) hour (0-23) day-of-month (1-31) month (1-12) day-of-week (0-6, 0 = Sunday), "
        'e.g. "0 * * * *" for every hour, or a macro such as @daily'
    ]


def test_cron_out_of_range_is_rejected(write: Write, errors: Errors) -> None:
    """A cron field out of range is rejected naming the field and its range."""
    path = write(schedule("cron: '61 * * * *'", *VALID[1:]))
    assert errors(path) == [
        f"{path}:13:11: CFG005 error: schedules.digest.cron: cron '61 * * * *': the minute field '61' has a "
        "value that is not 0-59"
    ]


def test_cron_that_never_fires_is_rejected(write: Write, errors: Errors) -> None:
    """A cron on a day that never exists (30 February) is rejected."""
    path = write(schedule("cron: '0 0 30 2 *'", *VALID[1:]))
    assert errors(path) == [
        f"{path}:13:11: CFG005 error: schedules.digest.cron: cron '0 0 30 2 *' never fires (no such day in "
        "any month); fix the day-of-month or month field"
    ]


def test_cron_macro_is_accepted(write: Write) -> None:
    """A macro such as @daily is accepted in place of 5 fields."""
    loaded = load_config([write(schedule("cron: '@daily'", *VALID[1:]))])
    assert loaded.config.schedules["digest"].cron == "@daily"


def test_unknown_time_zone_suggests_close_names(write: Write, errors: Errors) -> None:
    """An unknown time zone suggests the closest IANA names."""
    path = write(schedule(*VALID, "timezone: Europe/Berln"))
    assert errors(path) == [
        f"{path}:16:15: CFG005 error: schedules.digest.timezone: unknown time zone 'Europe/Berln'; did you "
        "mean 'Europe/Berlin', 'Europe/Dublin', 'Europe/Belfast'? write an IANA name such as 'UTC' or "
        "'Europe/Berlin'"
    ]


def test_bad_duration_lists_the_accepted_forms(write: Write, errors: Errors) -> None:
    """A duration that does not parse shows the value and the accepted forms."""
    path = write(schedule(*VALID, "stagger: { window: 5x }"))
    assert errors(path) == [
        f"{path}:16:24: CFG005 error: schedules.digest.stagger.window: '5x' is not a duration; write a number "
        "with a unit (ms, s, m, h, d), e.g. 90s, 60m, 1h30m, 2d"
    ]


def test_wrong_type_shows_the_value_and_the_field(write: Write, errors: Errors) -> None:
    """A value of the wrong type shows pydantic's expectation, the value and what the field is."""
    path = write(schedule(*VALID, "priority: high"))
    assert errors(path) == [
        f"{path}:16:15: CFG005 error: schedules.digest.priority: input should be a valid integer, unable to "
        "parse string as an integer, got 'high'"
    ]


def test_missing_required_key_is_named(write: Write, errors: Errors) -> None:
    """A schedule without `cron` names the missing key at the schedule's line."""
    path = write(schedule(*VALID[1:]))
    assert errors(path) == [
        f"{path}:12:3: CFG005 error: schedules.digest: required key 'cron' is missing; add `cron: ...` "
        "(5-field cron expression, evaluated in `timezone`.)"
    ]


def test_static_cohort_must_provide_data_fields_of_the_key(write: Write, errors: Errors) -> None:
    """A `{data.x}` field that a static row's data lacks is an error naming the row."""
    path = write(
        schedule(
            "cron: '0 * * * *'",
            "cohort:",
            "  static:",
            "    - { key: acme, data: { region: eu } }",
            "    - { key: globex }",
            "queue: plain",
            "singleton_key: 'rollup:{data.region}'",
        )
    )
    assert errors(path) == [
        f"{path}:19:20: CFG008 error: schedules.digest.singleton_key: 'rollup:{{data.region}}' needs "
        "{data.region}, but static row 1 (key 'globex') has none; add `region` to the `data` of every row, "
        "or drop {data.region} from the template"
    ]


def test_static_cohort_must_provide_source_for_the_key(write: Write, errors: Errors) -> None:
    """A `{source}` field needs every static row to have a source."""
    path = write(
        schedule(
            "cron: '0 * * * *'",
            "cohort: { static: [{ key: a, source: ui }, { key: b }] }",
            "queue: plain",
            "singleton_key: '{source}:{key}'",
        )
    )
    assert errors(path) == [
        f"{path}:16:20: CFG008 error: schedules.digest.singleton_key: '{{source}}:{{key}}' needs {{source}}, "
        "but static row 1 (key 'b') has none; give every row a `source`, or drop {source} from the template"
    ]


def test_key_field_is_always_provided(write: Write) -> None:
    """`{key}`, `{schedule}` and `{tick}` need nothing from a static row."""
    path = write(
        schedule(
            "cron: '0 * * * *'",
            "cohort: { static: [{ key: a }] }",
            "queue: plain",
            "singleton_key: '{schedule}:{tick}:{key}'",
        )
    )
    assert load_config([path]).config.schedules["digest"].singleton_key == "{schedule}:{tick}:{key}"


def test_bad_template_is_rejected(write: Write, errors: Errors) -> None:
    """A singleton_key naming an unknown field lists the fields a template may use."""
    path = write(schedule(*VALID, "singleton_key: 'x:{org}'"))
    assert errors(path) == [
        f"{path}:16:20: CFG005 error: schedules.digest.singleton_key: template 'x:{{org}}' names unknown field "
        "{org}; use {key}, {source}, {schedule}, {tick} or {data.<field>}"
    ]


def test_schedule_with_queue_and_lane_is_rejected(write: Write, errors: Errors) -> None:
    """A schedule with both `queue` and `lane` says which to keep."""
    path = write(schedule(*VALID, "lane: chat"))
    assert errors(path) == [
        f"{path}:16:11: CFG006 error: schedules.digest: has both `queue: plain` and `lane: chat`; keep `queue` "
        "to send every job to one queue, or `lane` to route each row by its source"
    ]


def test_schedule_without_queue_or_lane_is_rejected(write: Write, errors: Errors) -> None:
    """A schedule with neither `queue` nor `lane` says to add one."""
    path = write(schedule(*VALID[:2]))
    assert errors(path) == [
        f"{path}:12:3: CFG006 error: schedules.digest: has neither `queue` nor `lane`; add `queue: <a key of "
        "queues:>` or `lane: <a key of lanes:>`"
    ]


def test_cohort_with_sql_and_static_is_rejected(write: Write, errors: Errors) -> None:
    """A cohort with both `sql` and `static` says which to keep."""
    path = write(schedule("cron: '0 * * * *'", "cohort:", "  sql: select 1", "  static: []", "queue: plain"))
    assert errors(path) == [
        f"{path}:16:7: CFG006 error: schedules.digest.cohort: has both `sql` and `static`; keep `sql` to query "
        "the app database at each tick, or `static` for a fixed list of rows"
    ]


def test_cohort_without_sql_or_static_is_rejected(write: Write, errors: Errors) -> None:
    """A cohort with neither `sql` nor `static` shows both forms."""
    path = write(schedule("cron: '0 * * * *'", "cohort: { database: app }", "queue: plain"))
    assert errors(path) == [
        f"{path}:14:5: CFG006 error: schedules.digest.cohort: has neither `sql` nor `static`; add `sql: select "
        "id as key ...` or `static: [{key: ...}]`"
    ]


def test_undeclared_queue_suggests_a_declared_one(write: Write, errors: Errors) -> None:
    """A schedule's queue that is not declared names the closest declared queue and lists them."""
    path = write(schedule("cron: '0 * * * *'", "cohort: { sql: select 1 }", "queue: insight"))
    assert errors(path) == [
        f"{path}:15:12: CFG007 error: schedules.digest.queue: queue 'insight' is not declared (did you mean "
        "'insights'?); declare it under `queues:` or use one of: insights, plain, rollups"
    ]


def test_undeclared_lane_is_rejected(write: Write, errors: Errors) -> None:
    """A schedule's lane that is not declared lists the declared lanes."""
    path = write(schedule("cron: '0 * * * *'", "cohort: { sql: select 1 }", "lane: ui"))
    assert errors(path) == [
        f"{path}:15:11: CFG007 error: schedules.digest.lane: lane 'ui' is not declared; declare it under "
        "`lanes:` or use one of: chat"
    ]


def test_undeclared_database_is_rejected(write: Write, errors: Errors) -> None:
    """A cohort database that is not declared lists the declared databases."""
    path = write(schedule("cron: '0 * * * *'", "cohort: { sql: select 1, database: ap }", "queue: plain"))
    assert errors(path) == [
        f"{path}:14:40: CFG007 error: schedules.digest.cohort.database: database 'ap' is not declared (did you "
        "mean 'app'?); declare it under `databases:` or use one of: app, queue"
    ]


def test_undeclared_default_database_says_it_is_the_default(write: Write, errors: Errors) -> None:
    """A queue relying on the default database `queue` that is not declared says it is the default."""
    path = write(
        "databases:\n  app: { dsn_env: APP_DATABASE_URL }\n"
        "queues:\n  plain: { name: plain-jobs, backend: pgboss }\n",
        header=False,
    )
    assert errors(path) == [
        f"{path}:4:3: CFG007 error: queues.plain.database: database 'queue' (the default of `database`) is "
        "not declared; declare it under `databases:` or use one of: app"
    ]


def test_lane_route_to_undeclared_queue_is_rejected(write: Write, errors: Errors) -> None:
    """A lane route (in a second file) to a queue that is not declared names the route."""
    base = write("")
    path = write(
        "lanes:\n  ui:\n    default: plain\n    routes: { report: reports }\n",
        name="lanes.yaml",
        header=False,
    )
    assert errors(base, path) == [
        f"{path}:4:23: CFG007 error: lanes.ui.routes.report: queue 'reports' is not declared; declare it "
        "under `queues:` or use one of: insights, plain, rollups"
    ]


def test_lane_default_to_undeclared_queue_is_rejected(write: Write, errors: Errors) -> None:
    """A lane default that is not a declared queue is rejected."""
    path = write("lanes:\n  ui: { default: chat-ui }\n", header=False)
    assert errors(path) == [
        f"{path}:2:18: CFG007 error: lanes.ui.default: queue 'chat-ui' is not declared; declare it under "
        "`queues:` or use one of: none"
    ]


def test_alias_to_undeclared_queue_is_rejected(write: Write, errors: Errors) -> None:
    """An alias whose target is not a declared queue is rejected."""
    path = write("aliases:\n  old-name: plian\n")
    assert errors(path) == [
        f"{path}:12:13: CFG007 error: aliases.old-name: queue 'plian' is not declared (did you mean 'plain'?); "
        "declare it under `queues:` or use one of: insights, plain, rollups"
    ]


def test_procrastinate_queue_needs_a_task(write: Write, errors: Errors) -> None:
    """A procrastinate queue without `task` says what to add."""
    path = write(
        "databases:\n  queue: { dsn_env: Q }\nqueues:\n  more: { name: more, backend: procrastinate }\n",
        header=False,
    )
    assert errors(path) == [
        f"{path}:4:3: CFG009 error: queues.more: a procrastinate queue needs `task`, the registered task name "
        "every job of this queue runs; add e.g. `task: billing.rollup`"
    ]


def test_unknown_pgboss_policy_lists_the_policies(write: Write, errors: Errors) -> None:
    """A policy pg-boss does not know suggests the closest and lists all six."""
    path = write(
        "databases:\n  queue: { dsn_env: Q }\nqueues:\n  more: { name: more, backend: pgboss, policy: singelton }\n",
        header=False,
    )
    assert errors(path) == [
        f"{path}:4:48: CFG005 error: queues.more.policy: policy 'singelton' is not a pg-boss policy (did you "
        "mean 'singleton'?); use one of standard, short, singleton, stately, exclusive, key_strict_fifo"
    ]


def test_every_error_of_a_run_is_reported(write: Write, errors: Errors) -> None:
    """Several errors in one run are all reported, in file order, not only the first."""
    path = write(
        schedule("cron: '0 * * *'", "timezone: Mars/Olympus", "cohort: { sql: x }", "queue: nope")
        + "  other:\n    cron: '0 * * * *'\n    cohort: {}\n    lane: chat\n"
    )
    assert [": ".join(line.split(": ")[:2]) for line in errors(path)] == [
        f"{path}:13:11: CFG005 error",
        f"{path}:14:15: CFG005 error",
        f"{path}:16:12: CFG007 error",
        f"{path}:19:5: CFG006 error",
    ]


def test_static_cohort_needs_no_app_database(load: Load) -> None:
    """A static cohort touches no database, so a config without an `app` database loads."""
    loaded = load(
        """\
        version: 1
        databases:
          queue: { dsn_env: QUEUE_DATABASE_URL }
        queues:
          rollups: { name: billing, backend: procrastinate, task: billing.rollup }
        schedules:
          nightly:
            cron: "15 2 * * *"
            cohort: { static: [{ key: acme }] }
            queue: rollups
        """,
        header=False,
    )
    assert list(loaded.config.schedules) == ["nightly"]
