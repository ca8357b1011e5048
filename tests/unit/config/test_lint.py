"""Lint rules: configurations that load but would drop or delay work."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scheduler.config import Finding, lint, load_config
from scheduler.config.lint import live_key_findings

if TYPE_CHECKING:
    from tests.unit.config.conftest import Load, Write

from tests.unit.config.conftest import EXAMPLE


def codes(findings: list[Finding]) -> list[str]:
    """The findings, formatted as `scheduler validate` prints them."""
    return [f.format() for f in findings]


def static_rows(n: int) -> str:
    """A flow list of `n` static rows keyed org-0 … org-(n-1)."""
    return "[" + ", ".join(f"{{ key: org-{i} }}" for i in range(n)) + "]"


def test_design_example_lints_clean(load: Load) -> None:
    """The example of DESIGN.md loads and has no lint finding."""
    assert lint(load(EXAMPLE, header=False)) == []


def test_sch001_static_fanout_into_stately_queue_counts_the_drops(load: Load) -> None:
    """A 13-row static fan-out into a stately queue without singleton_key loses 12 jobs: the seed incident."""
    loaded = load(
        f"schedules:\n  digest:\n    cron: '0 * * * *'\n    cohort: {{ static: {static_rows(13)} }}\n"
        "    queue: insights\n"
    )
    assert codes(lint(loaded)) == [
        f"{loaded.files[0]}:12:3: SCH001 error: schedule 'digest' fans out into queue 'insights' "
        "(generate-insight-post, policy stately), which keeps one job per singleton key, but it has no "
        'singleton_key: 12 of 13 jobs of every tick would be dropped; set `singleton_key: "digest:{key}"`'
    ]


def test_sch001_sql_fanout_with_a_constant_key(load: Load) -> None:
    """An SQL fan-out whose singleton_key names no row field loses all but one job per tick."""
    loaded = load(
        "schedules:\n  digest:\n    cron: '0 * * * *'\n    cohort: { sql: select 1 }\n"
        "    queue: insights\n    singleton_key: 'digest:{tick}'\n"
    )
    assert codes(lint(loaded)) == [
        f"{loaded.files[0]}:16:20: SCH001 error: schedule 'digest' fans out into queue 'insights' "
        "(generate-insight-post, policy stately), which keeps one job per singleton key, but singleton_key "
        "'digest:{tick}' is the same for every row: all but one job of every tick would be dropped; "
        'set `singleton_key: "digest:{key}"`'
    ]


def test_sch001_checks_every_queue_of_a_lane(load: Load) -> None:
    """A lane schedule without a key is flagged for the lane's stately route, not its standard default."""
    loaded = load(
        "schedules:\n  digest:\n    cron: '0 * * * *'\n    cohort: { sql: select 1 }\n    lane: chat\n"
    )
    assert [(f.code, "queue 'insights'" in f.message) for f in lint(loaded)] == [("SCH001", True)]


def test_sch001_quiet_with_a_per_entity_key(load: Load) -> None:
    """A per-entity singleton_key makes a stately fan-out safe."""
    loaded = load(
        f"schedules:\n  digest:\n    cron: '0 * * * *'\n    cohort: {{ static: {static_rows(13)} }}\n"
        "    queue: insights\n    singleton_key: 'digest:{key}'\n"
    )
    assert lint(loaded) == []


def test_sch002_window_longer_than_the_tick_interval(load: Load) -> None:
    """A 2h stagger window on a half-hourly cron is longer than the 30m between ticks."""
    loaded = load(
        "schedules:\n  digest:\n    cron: '*/30 * * * *'\n    cohort: { sql: select 1 }\n"
        "    queue: plain\n    stagger: { window: 2h, strategy: spread }\n"
    )
    assert codes(lint(loaded)) == [
        f"{loaded.files[0]}:16:24: SCH002 warning: schedule 'digest': stagger window 2h is longer than the "
        "shortest gap between two ticks of '*/30 * * * *' in UTC (30m): jobs of one tick would still be "
        "starting when the next tick fires; shorten the window to at most 30m or fire less often"
    ]


def test_sch002_quiet_when_the_window_fits(load: Load) -> None:
    """A window equal to the interval between ticks is fine."""
    loaded = load(
        "schedules:\n  digest:\n    cron: '0 * * * *'\n    cohort: { sql: select 1 }\n"
        "    queue: plain\n    stagger: { window: 60m }\n"
    )
    assert lint(loaded) == []


def test_sch003_static_cohort_with_a_repeated_key(load: Load) -> None:
    """Keys 7 and '7' are the same entity: the second row is flagged at its key."""
    loaded = load(
        "schedules:\n  digest:\n    cron: '0 * * * *'\n    cohort:\n      static:\n"
        "        - { key: 7 }\n        - { key: '8' }\n        - { key: '7' }\n    queue: plain\n"
    )
    assert codes(lint(loaded)) == [
        f"{loaded.files[0]}:18:18: SCH003 error: schedule 'digest': static cohort has key '7' in row 0 and "
        "again in row 2; the second would be dropped as duplicate_in_cohort at every tick; remove the repeated "
        "row or give it its own key"
    ]


def test_sch004_lane_across_backends(write: Write) -> None:
    """A lane routing to a pg-boss and a procrastinate queue is flagged."""
    base = write("")
    lanes = write(
        "lanes:\n  mixed: { default: plain, routes: { bill: rollups } }\n", name="lanes.yaml", header=False
    )
    assert codes(lint(load_config([base, lanes]))) == [
        f"{lanes}:2:3: SCH004 warning: lane 'mixed' routes to queues with different backends: "
        "plain (pgboss in queue), rollups (procrastinate in queue); one tick of a schedule on this lane then "
        "writes to several queue systems, and cannot commit as one transaction; keep a lane's queues on one "
        "backend and one database"
    ]


def test_sch005_static_source_without_a_route(load: Load) -> None:
    """A static row whose source the lane does not route is flagged at its source."""
    loaded = load(
        "schedules:\n  digest:\n    cron: '0 * * * *'\n    cohort:\n"
        "      static: [{ key: a, source: reprot }]\n    lane: chat\n    singleton_key: 'd:{key}'\n"
    )
    assert codes(lint(loaded)) == [
        f"{loaded.files[0]}:15:34: SCH005 warning: schedule 'digest': static row 0 (key 'a') has source "
        "'reprot', which lane 'chat' does not route (routed sources: report); it goes to the default queue "
        "'plain'; add a route for 'reprot' or fix the source"
    ]


def test_sch006_schedule_in_another_queue_database(write: Write) -> None:
    """A schedule whose queue lives apart from the other schedules' queue database is flagged."""
    base = write("")
    far = write(
        "databases:\n  other: { dsn_env: OTHER_DATABASE_URL }\n"
        "queues:\n  far: { name: far-jobs, backend: pgboss, database: other }\n"
        "schedules:\n"
        "  a: { cron: '0 * * * *', cohort: { sql: x }, queue: plain }\n"
        "  b: { cron: '0 * * * *', cohort: { sql: x }, queue: plain }\n"
        "  c: { cron: '0 * * * *', cohort: { sql: x }, queue: far }\n",
        name="far.yaml",
        header=False,
    )
    assert codes(lint(load_config([base, far]))) == [
        f"{far}:8:3: SCH006 warning: schedule 'c' enqueues into database 'other', while the other schedules "
        "use 'queue': the tick ledger is claimed in the same transaction as the enqueue, so this schedule "
        "needs its own ledger in 'other'; move its queue to 'queue' unless that is intended"
    ]


def test_sch006_lane_across_databases(write: Write) -> None:
    """A lane schedule whose queues span two databases cannot claim and enqueue atomically."""
    base = write("")
    far = write(
        "databases:\n  other: { dsn_env: OTHER_DATABASE_URL }\n"
        "queues:\n  far: { name: far-jobs, backend: pgboss, database: other }\n"
        "lanes:\n  split: { default: plain, routes: { x: far } }\n"
        "schedules:\n  s: { cron: '0 * * * *', cohort: { sql: x }, lane: split }\n",
        name="far.yaml",
        header=False,
    )
    assert [f.format() for f in lint(load_config([base, far])) if f.code == "SCH006"] == [
        f"{far}:8:3: SCH006 warning: schedule 's' enqueues into several databases (other, queue) through "
        "lane 'split': its tick claim and its enqueues cannot commit in one transaction; route the lane to "
        "queues of one database"
    ]


def test_cfg010_alias_onto_an_aliased_name(load: Load) -> None:
    """An alias to a queue whose real name is itself aliased is a warning."""
    loaded = load("aliases:\n  older-name: plain\n  plain-jobs: insights\n")
    assert codes(lint(loaded)) == [
        f"{loaded.files[0]}:12:15: CFG010 warning: alias 'older-name' moves jobs to queue 'plain', whose real "
        "name 'plain-jobs' is itself aliased (to 'insights'): jobs would be moved twice, or back and forth; "
        "point 'older-name' at the final queue or drop the alias of 'plain-jobs'"
    ]


def test_sch001_procrastinate_fanout_with_one_queueing_lock(load: Load) -> None:
    """A procrastinate fan-out whose rows share one queueing_lock keeps one job per tick: the seed incident there."""
    loaded = load(
        f"schedules:\n  roll:\n    cron: '0 * * * *'\n    cohort: {{ static: {static_rows(5)} }}\n"
        "    queue: rollups\n    singleton_key: rollup\n"
    )
    assert codes(lint(loaded)) == [
        f"{loaded.files[0]}:16:20: SCH001 error: schedule 'roll' fans out into queue 'rollups' "
        "(billing, policy queueing_lock), which keeps one job per singleton key, but singleton_key 'rollup' "
        'is the same for every row: 4 of 5 jobs of every tick would be dropped; set `singleton_key: "roll:{key}"`'
    ]


def test_procrastinate_fanout_without_a_key_is_not_flagged(load: Load) -> None:
    """procrastinate never deduplicates jobs without a queueing_lock, so an unkeyed fan-out loses nothing."""
    loaded = load(
        f"schedules:\n  roll:\n    cron: '0 * * * *'\n    cohort: {{ static: {static_rows(5)} }}\n"
        "    queue: rollups\n"
    )
    assert codes(lint(loaded)) == []


def test_sch007_unkeyed_fanout_into_singleton_queue_runs_one_at_a_time(load: Load) -> None:
    """pg-boss `singleton` accepts an unkeyed fan-out but runs it one job at a time: a warning, not a drop."""
    loaded = load(
        "version: 1\ndatabases:\n  queue: { dsn_env: QUEUE_DATABASE_URL }\n"
        "queues:\n  solo: { name: solo-jobs, backend: pgboss, policy: singleton }\n"
        f"schedules:\n  digest:\n    cron: '0 * * * *'\n    cohort: {{ static: {static_rows(3)} }}\n"
        "    queue: solo\n",
        header=False,
    )
    assert codes(lint(loaded)) == [
        f"{loaded.files[0]}:7:3: SCH007 warning: schedule 'digest' fans out into queue 'solo' (solo-jobs, "
        "policy singleton), which runs one job per singleton key at a time, but it has no singleton_key: "
        'the whole cohort runs one job at a time; set `singleton_key: "digest:{key}"`'
    ]


STRICT = (
    "databases:\n  app: { dsn_env: APP_DATABASE_URL }\n  queue: { dsn_env: QUEUE_DATABASE_URL }\n"
    "queues:\n  strict: { name: strict-jobs, backend: pgboss, policy: key_strict_fifo }\n"
    "schedules:\n  digest:\n    cron: '0 * * * *'\n    cohort: { sql: select 1 }\n    queue: strict\n"
)


def test_sch008_keyless_fanout_into_key_strict_fifo_fails_every_fire(load: Load) -> None:
    """key_strict_fifo needs a singleton key on every job (pg-boss refuses the job): an error, not a surprise."""
    loaded = load(STRICT, header=False)
    assert codes(lint(loaded)) == [
        f"{loaded.files[0]}:7:3: SCH008 error: schedule 'digest' fans out into queue 'strict' (strict-jobs), "
        "with policy key_strict_fifo, which needs a singleton key on every job, but it has no singleton_key: "
        'pg-boss refuses every job, so every fire fails; set `singleton_key: "digest:{key}"`'
    ]


def test_sch008_is_quiet_with_a_singleton_key(load: Load) -> None:
    """Any singleton key satisfies key_strict_fifo (even one shared by every row: they then run in order)."""
    assert lint(load(STRICT + "    singleton_key: 'digest:{key}'\n", header=False)) == []


def test_live_key_findings_use_the_live_policy_when_it_differs(load: Load) -> None:
    """SCH105: a queue declared `standard` that is key_strict_fifo in the live database fails the same way."""
    loaded = load(STRICT.replace("policy: key_strict_fifo", "policy: standard"), header=False)
    assert lint(loaded) == []
    assert [f.code for f in live_key_findings(loaded, {"strict": "key_strict_fifo"})] == ["SCH105"]
    assert (
        "whose live policy is key_strict_fifo"
        in live_key_findings(loaded, {"strict": "key_strict_fifo"})[0].message
    )
    assert live_key_findings(loaded, {"strict": "standard"}) == []


def test_live_key_findings_leave_the_declared_policy_to_sch008(load: Load) -> None:
    """When the live policy is the declared one, SCH008 already said it: no second finding."""
    loaded = load(STRICT, header=False)
    assert live_key_findings(loaded, {"strict": "key_strict_fifo"}) == []


def test_sch009_a_percent_psycopg_refuses_in_cohort_or_watcher_sql(load: Load) -> None:
    """A `LIKE 'a%'` in a cohort and a schedule's parameter in a watcher: each query is one SCH009 error at
    its `sql:` value, naming the place in the query and the fix, whatever else the query holds."""
    loaded = load(
        "schedules:\n  digest:\n    cron: '0 * * * *'\n    cohort:\n      sql: |\n"
        "        select id as key from org\n        where name like 'a%' or name like 'b%'\n"
        "    queue: insights\n    singleton_key: 'd:{key}'\n"
        "watchers:\n  stuck:\n    sql: select 1 as key where %(tick)s > now()\n    queue: plain\n"
    )
    assert codes(lint(loaded)) == [
        f"{loaded.files[0]}:15:12: SCH009 error: schedule 'digest': its SQL would fail at every run: at line "
        "2, column 19 of the query, `%'` is not a placeholder: parameters are bound into this query, so "
        "psycopg reads every `%` (in string literals and comments too); write a literal `%` (LIKE 'a%', the "
        "modulo operator) as `%%`; 1 more `%` in this query to fix",
        f"{loaded.files[0]}:22:10: SCH009 error: watcher 'stuck': its SQL would fail at every run: at line "
        "1, column 23 of the query, `%(tick)s` names no parameter this query is given: use one of "
        "%(stuck_after)s, %(now)s, %(watcher)s (or `%%` for a literal `%`)",
    ]


def test_sch009_doubled_percent_and_bound_parameters_lint_clean(load: Load) -> None:
    """`%%` and the cohort's own parameters are what psycopg expects: no finding."""
    loaded = load(
        "schedules:\n  digest:\n    cron: '0 * * * *'\n    cohort:\n"
        "      sql: select id as key from org where name like 'a%%' and h = %(hour)s and %(tick)s > now()\n"
        "    queue: insights\n    singleton_key: 'd:{key}'\n"
    )
    assert lint(loaded) == []


def test_sch001_leaves_a_pair_the_live_check_reports_to_it(load: Load) -> None:
    """`live_checked` (the pairs SCH104 reports with the live policy) drops SCH001 for that schedule and
    queue only: the same schedule into another queue keeps its SCH001."""
    loaded = load(
        f"schedules:\n  digest:\n    cron: '0 * * * *'\n    cohort: {{ static: {static_rows(3)} }}\n"
        "    queue: insights\n"
        f"  other:\n    cron: '0 * * * *'\n    cohort: {{ static: {static_rows(3)} }}\n    queue: insights\n"
    )
    assert [f.code for f in lint(loaded)] == ["SCH001", "SCH001"]
    [left] = lint(loaded, live_checked={("digest", "insights"), ("digest", "plain")})
    assert left.code == "SCH001"
    assert "schedule 'other'" in left.message
