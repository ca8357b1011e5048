"""Lint rules over a valid configuration: things that load but will not do what their author meant. Pure.

| code   | severity | rule |
| ------ | -------- | ---- |
| SCH001 | error    | a fan-out whose rows share one slot: a pg-boss queue with a dropping policy (stately, exclusive, short) and no per-entity `singleton_key`, or a procrastinate queue with the same `singleton_key` (queueing_lock) on every row: all but one job of a tick are dropped |
| SCH007 | warning  | a fan-out into a pg-boss `singleton` queue without a per-entity `singleton_key`: nothing is dropped, but the jobs run one at a time |
| SCH002 | warning  | a stagger window longer than the shortest gap between two ticks of the schedule's cron (`planning.ticks.min_interval`, DST included) |
| SCH003 | error    | a static cohort with the same key twice (the second is dropped as `duplicate_in_cohort`) |
| SCH004 | warning  | a lane whose queues use different backends or databases |
| SCH005 | warning  | a static row whose `source` has no route in the schedule's lane (it falls to the default queue) |
| SCH006 | warning  | a schedule whose queues live in a database other than the other schedules' (the tick ledger is claimed in the queue database, in the same transaction as the enqueue), or in several databases |
| SCH008 | error    | a schedule without `singleton_key` into a pg-boss queue whose declared policy needs one on every job (`key_strict_fifo`): pg-boss refuses the enqueue, so every fire fails |
| SCH009 | error    | cohort or watcher SQL with a `%` that psycopg refuses when it binds the parameters: a literal `%` not written `%%` (`LIKE 'a%'`), a `%(name)s` naming no parameter, a positional `%s` (`config.placeholders`); every run of the query would fail |
| CFG010 | warning  | an alias whose target queue's real name is itself aliased (jobs would be moved onto a name that is moved again) |

`validate --check-db` adds `live_key_findings` (SCH105): the same rule for the policy a queue has in the live
database, when it differs from the declared one. Its SCH104 is SCH001 for the live policy: where both would
report the same schedule and queue, only SCH104 is reported (`lint(..., live_checked=...)`).
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import TYPE_CHECKING

from scheduler.config.findings import Finding, Severity, sort_findings
from scheduler.config.models import Schedule, format_duration
from scheduler.config.placeholders import COHORT_PARAMETERS, WATCHER_PARAMETERS, problems
from scheduler.config.validate import lane_queues, queues_of, resolve_queue
from scheduler.planning.keys import is_per_entity
from scheduler.planning.ticks import min_interval
from scheduler.types import BackendKind

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

    from scheduler.config.findings import ConfigPath
    from scheduler.config.loader import LoadedConfig
    from scheduler.types import QueueRef

DROPPING_POLICIES = frozenset({"stately", "exclusive", "short"})
"""pg-boss policies whose unique index refuses a second *waiting* job with the same singleton key (keyless
jobs all share the key ''): an unkeyed fan-out keeps one job and drops the rest."""

KEY_REQUIRED_POLICIES = frozenset({"key_strict_fifo"})
"""pg-boss policies that need a singleton key on every job: pg-boss's send() throws without one, and the job
table has a CHECK for it (`backends.pgboss.adapter._require_keys` refuses such a batch before writing)."""

SERIALIZING_POLICIES = frozenset({"singleton"})
"""pg-boss policies that allow one *active* job per key: an unkeyed fan-out is accepted but runs one at a time."""


def shared_slot_policy(backend: BackendKind, policy: str | None, singleton_key: str | None) -> str | None:
    """The policy that keeps one job when every row of a tick has `singleton_key` (None: no key), or None.

    pg-boss: a dropping policy, whatever the key. procrastinate: `queueing_lock`, only when there is a key
    (jobs without a queueing lock are never deduplicated).
    """
    if backend is BackendKind.PROCRASTINATE:
        return "queueing_lock" if singleton_key is not None else None
    return policy if policy in DROPPING_POLICIES else None


def lint(loaded: LoadedConfig, *, live_checked: Collection[tuple[str, str]] = ()) -> list[Finding]:
    """Every lint finding of a loaded configuration, in file order.

    `live_checked`: (schedule, logical queue) pairs whose shared slot the live check already reports, with
    the live policy (`commands.checkdb.live_shared_slots`, SCH104); SCH001 is not repeated for them.
    """
    findings: list[Finding] = []
    findings.extend(_sch001_one_per_key(loaded, frozenset(live_checked)))
    findings.extend(_sch002_stagger_gap(loaded))
    findings.extend(_sch003_static_duplicates(loaded))
    findings.extend(_sch004_mixed_lanes(loaded))
    findings.extend(_sch005_unrouted_sources(loaded))
    findings.extend(_sch006_split_databases(loaded))
    declared = {name: queue.policy for name, queue in loaded.config.queues.items()}
    findings.extend(keyless_into_key_required(loaded, declared, code="SCH008", live=False))
    findings.extend(_sch009_placeholders(loaded))
    findings.extend(_cfg010_chained_aliases(loaded))
    return sort_findings(findings)


def _rows_per_queue(loaded: LoadedConfig, schedule: Schedule) -> Counter[str] | None:
    """How many static rows land in each logical queue, or None for an SQL cohort."""
    rows = schedule.cohort.static
    if rows is None:
        return None
    if schedule.queue is not None:
        return Counter({schedule.queue: len(rows)})
    lane = loaded.config.lanes[schedule.lane or ""]
    return Counter(lane.routes.get(row.source or "", lane.default) for row in rows)


def _sch001_one_per_key(loaded: LoadedConfig, live_checked: frozenset[tuple[str, str]]) -> list[Finding]:
    findings: list[Finding] = []
    for name, schedule in loaded.config.schedules.items():
        if is_per_entity(schedule.singleton_key):
            continue
        counts = _rows_per_queue(loaded, schedule)
        what = (
            f"singleton_key {schedule.singleton_key!r} is the same for every row"
            if schedule.singleton_key is not None
            else "it has no singleton_key"
        )
        for queue in queues_of(loaded.config, schedule):
            if counts is not None and counts[queue.logical] <= 1:
                continue  # at most one static row in this queue: nothing collides within a tick
            if (name, queue.logical) in live_checked:
                continue  # SCH104 says it, with the policy the live queue has
            where = loaded.locations.of(("schedules", name, "singleton_key"))
            fix = f'set `singleton_key: "{name}:{{key}}"`'
            policy = shared_slot_policy(queue.backend, queue.policy, schedule.singleton_key)
            if policy is None:
                if queue.policy in SERIALIZING_POLICIES:
                    findings.append(
                        Finding(
                            "SCH007",
                            Severity.WARNING,
                            f"schedule {name!r} fans out into queue {queue.logical!r} ({queue.name}, policy "
                            f"{queue.policy}), which runs one job per singleton key at a time, but {what}: "
                            f"the whole cohort runs one job at a time; {fix}",
                            where,
                        )
                    )
                continue
            if counts is None:
                loss = "all but one job of every tick would be dropped"
            else:
                n = counts[queue.logical]
                loss = f"{n - 1} of {n} jobs of every tick would be dropped"
            findings.append(
                Finding(
                    "SCH001",
                    Severity.ERROR,
                    f"schedule {name!r} fans out into queue {queue.logical!r} ({queue.name}, policy "
                    f"{policy}), which keeps one job per singleton key, but {what}: {loss}; {fix}",
                    where,
                )
            )
    return findings


def _sch002_stagger_gap(loaded: LoadedConfig) -> list[Finding]:
    findings: list[Finding] = []
    for name, schedule in loaded.config.schedules.items():
        window = schedule.stagger.window
        if window <= timedelta(0):
            continue
        try:
            gap = min_interval(schedule.cron, schedule.timezone)
        except ValueError:
            continue  # fires at most once: there is no next tick to overlap
        if window <= gap:
            continue
        findings.append(
            Finding(
                "SCH002",
                Severity.WARNING,
                f"schedule {name!r}: stagger window {format_duration(window)} is longer than the shortest gap "
                f"between two ticks of {schedule.cron!r} in {schedule.timezone} ({format_duration(gap)}): jobs "
                "of one tick would still be starting when the next tick fires; shorten the window to at most "
                f"{format_duration(gap)} or fire less often",
                loaded.locations.of(("schedules", name, "stagger", "window")),
            )
        )
    return findings


def _sch003_static_duplicates(loaded: LoadedConfig) -> list[Finding]:
    findings: list[Finding] = []
    for name, schedule in loaded.config.schedules.items():
        first: dict[str, int] = {}
        for index, row in enumerate(schedule.cohort.static or ()):
            key = str(row.key)  # job keys are text: 7 and "7" are the same entity
            if key not in first:
                first[key] = index
                continue
            findings.append(
                Finding(
                    "SCH003",
                    Severity.ERROR,
                    f"schedule {name!r}: static cohort has key {key!r} in row {first[key]} and again in row "
                    f"{index}; the second would be dropped as duplicate_in_cohort at every tick; "
                    "remove the repeated row or give it its own key",
                    loaded.locations.of(("schedules", name, "cohort", "static", index, "key")),
                )
            )
    return findings


def _describe(queues: list[QueueRef]) -> str:
    return ", ".join(f"{q.logical} ({q.backend.value} in {q.database})" for q in queues)


def _sch004_mixed_lanes(loaded: LoadedConfig) -> list[Finding]:
    findings: list[Finding] = []
    for name in loaded.config.lanes:
        queues = [resolve_queue(loaded.config, q) for q in lane_queues(loaded.config, name)]
        backends = {q.backend for q in queues}
        dbs = {q.database for q in queues}
        if len(backends) <= 1 and len(dbs) <= 1:
            continue
        differ = " and ".join(
            word for word, n in (("backends", len(backends)), ("databases", len(dbs))) if n > 1
        )
        findings.append(
            Finding(
                "SCH004",
                Severity.WARNING,
                f"lane {name!r} routes to queues with different {differ}: {_describe(queues)}; one tick of "
                "a schedule on this lane then writes to several queue systems, and cannot commit as one "
                "transaction; keep a lane's queues on one backend and one database",
                loaded.locations.of(("lanes", name)),
            )
        )
    return findings


def _sch005_unrouted_sources(loaded: LoadedConfig) -> list[Finding]:
    findings: list[Finding] = []
    for name, schedule in loaded.config.schedules.items():
        if schedule.lane is None or schedule.cohort.static is None:
            continue
        lane = loaded.config.lanes[schedule.lane]
        for index, row in enumerate(schedule.cohort.static):
            if row.source is None or row.source in lane.routes:
                continue
            routed = ", ".join(sorted(lane.routes)) or "none"
            findings.append(
                Finding(
                    "SCH005",
                    Severity.WARNING,
                    f"schedule {name!r}: static row {index} (key {row.key!r}) has source {row.source!r}, "
                    f"which lane {schedule.lane!r} does not route (routed sources: {routed}); it goes to the "
                    f"default queue {lane.default!r}; add a route for {row.source!r} or fix the source",
                    loaded.locations.of(("schedules", name, "cohort", "static", index, "source")),
                )
            )
    return findings


def _sch006_split_databases(loaded: LoadedConfig) -> list[Finding]:
    config = loaded.config
    per_schedule = {
        name: [q.database for q in queues_of(config, schedule)] for name, schedule in config.schedules.items()
    }
    usage = Counter(db for dbs in per_schedule.values() for db in set(dbs))
    if not usage:
        return []
    # The database most schedules enqueue into is "the" queue database; ties go to the first in name order.
    main = min(usage, key=lambda db: (-usage[db], db))
    findings: list[Finding] = []
    for name, dbs in per_schedule.items():
        distinct = sorted(set(dbs))
        where = loaded.locations.of(("schedules", name))
        if len(distinct) > 1:
            message = (
                f"schedule {name!r} enqueues into several databases ({', '.join(distinct)}) through lane "
                f"{config.schedules[name].lane!r}: its tick claim and its enqueues cannot commit in one "
                "transaction; route the lane to queues of one database"
            )
        elif distinct[0] != main:
            message = (
                f"schedule {name!r} enqueues into database {distinct[0]!r}, while the other schedules use "
                f"{main!r}: the tick ledger is claimed in the same transaction as the enqueue, so this "
                f"schedule needs its own ledger in {distinct[0]!r}; move its queue to {main!r} unless that "
                "is intended"
            )
        else:
            continue
        findings.append(Finding("SCH006", Severity.WARNING, message, where))
    return findings


def keyless_into_key_required(
    loaded: LoadedConfig, policies: Mapping[str, str | None], *, code: str, live: bool
) -> list[Finding]:
    """`code` for each schedule without `singleton_key` that fans out into a pg-boss queue whose policy (from
    `policies`, by logical queue) needs a key on every job: pg-boss would refuse every job of every fire."""
    findings: list[Finding] = []
    for name, schedule in loaded.config.schedules.items():
        if schedule.singleton_key is not None:
            continue
        for queue in queues_of(loaded.config, schedule):
            policy = policies.get(queue.logical)
            if queue.backend is not BackendKind.PGBOSS or policy not in KEY_REQUIRED_POLICIES:
                continue
            whose = "whose live policy is" if live else "with policy"
            findings.append(
                Finding(
                    code,
                    Severity.ERROR,
                    f"schedule {name!r} fans out into queue {queue.logical!r} ({queue.name}), {whose} {policy}, "
                    "which needs a singleton key on every job, but it has no singleton_key: pg-boss refuses "
                    f'every job, so every fire fails; set `singleton_key: "{name}:{{key}}"`',
                    loaded.locations.of(("schedules", name)),
                )
            )
    return findings


def _sch009_placeholders(loaded: LoadedConfig) -> list[Finding]:
    queries: list[tuple[str, str, ConfigPath, tuple[str, ...]]] = [
        (f"schedule {name!r}", schedule.cohort.sql, ("schedules", name, "cohort", "sql"), COHORT_PARAMETERS)
        for name, schedule in loaded.config.schedules.items()
        if schedule.cohort.sql is not None
    ]
    queries += [
        (f"watcher {name!r}", watcher.sql, ("watchers", name, "sql"), WATCHER_PARAMETERS)
        for name, watcher in loaded.config.watchers.items()
        if watcher.sql is not None
    ]
    findings: list[Finding] = []
    for owner, query, path, names in queries:
        found = problems(query, names)
        if not found:
            continue
        first = found[0]
        more = f"; {len(found) - 1} more `%` in this query to fix" if len(found) > 1 else ""
        findings.append(
            Finding(
                "SCH009",
                Severity.ERROR,
                f"{owner}: its SQL would fail at every run: at line {first.line}, column {first.column} of the "
                f"query, {first.message}{more}",
                loaded.locations.of(path),
            )
        )
    return findings


def live_key_findings(loaded: LoadedConfig, live: Mapping[str, str | None]) -> list[Finding]:
    """SCH105: `keyless_into_key_required` for the live policies (`live`: logical queue → live policy) of
    existing queues whose live policy differs from the declared one (the declared one is SCH008's)."""
    differing = {
        logical: policy
        for logical, policy in live.items()
        if logical in loaded.config.queues and policy != loaded.config.queues[logical].policy
    }
    return keyless_into_key_required(loaded, differing, code="SCH105", live=True)


def _cfg010_chained_aliases(loaded: LoadedConfig) -> list[Finding]:
    config = loaded.config
    findings: list[Finding] = []
    for old, target in config.aliases.items():
        queue = config.queues.get(target)
        if queue is None or queue.name not in config.aliases:
            continue
        findings.append(
            Finding(
                "CFG010",
                Severity.WARNING,
                f"alias {old!r} moves jobs to queue {target!r}, whose real name {queue.name!r} is itself "
                f"aliased (to {config.aliases[queue.name]!r}): jobs would be moved twice, or back and forth; "
                f"point {old!r} at the final queue or drop the alias of {queue.name!r}",
                loaded.locations.of(("aliases", old)),
            )
        )
    return findings
