"""Checks that read the live databases: the queues' schema versions, missing queues, live policies, and
the role cohort and watcher SQL runs as on the app databases.

Used by `validate --check-db` and `dry-run`. They only read; a database that cannot be reached is a
finding, not a crash.

| code   | severity | finding |
| ------ | -------- | ------- |
| SCH100 | error    | a queue database cannot be reached (or its DSN is not set) |
| SCH101 | error    | a queue system's schema is missing or not the version this scheduler was built against |
| SCH102 | error    | a queue does not exist (a warning with `create_missing: true`: it is created at the first fan-out) |
| SCH103 | warning  | a queue's declared policy differs from its live policy (the live one decides what is dropped) |
| SCH104 | error    | a fan-out whose rows share one singleton key (or none) into a live one-per-key queue |
| SCH110 | warning  | the role that cohort or watcher SQL runs as on an app database can write (superuser, server files or programs, INSERT/UPDATE/DELETE/TRUNCATE on a table outside the system schemas, dblink), or that role could not be checked; give it a read-only role (README, "Your own database") |
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg

from scheduler.backends.pgboss.adapter import create_queue_snippet
from scheduler.config import Finding, Severity, queues_of, resolve_queue
from scheduler.config.lint import shared_slot_policy
from scheduler.errors import ConfigError, SchedulerError
from scheduler.planning.keys import is_per_entity
from scheduler.sqlfile import load_queries

if TYPE_CHECKING:
    from scheduler.fanout import Fanout
    from scheduler.types import QueueInfo, QueueRef


_QUERIES = load_queries("scheduler.commands", "checkdb.sql")
READ_ONLY_FIX = 'give the sidecar a read-only role there (README, "Your own database")'


def singleton_fix(schedule: str) -> str:
    return f'add `singleton_key: "{schedule}:{{key}}"` so each entity gets its own slot'


def read_queues(fanout: Fanout) -> tuple[dict[str, QueueInfo], list[Finding]]:
    """Describe every declared queue in its live database. Returns infos by logical name and findings."""
    config = fanout.loaded.config
    locate = fanout.loaded.locations.of
    infos: dict[str, QueueInfo] = {}
    findings: list[Finding] = []
    by_db: dict[str, list[QueueRef]] = {}
    for logical in config.queues:
        ref = resolve_queue(config, logical)
        by_db.setdefault(ref.database, []).append(ref)
    for database, refs in by_db.items():
        where = locate(("databases", database))
        try:
            conn = psycopg.connect(fanout.dsn(database), connect_timeout=5, autocommit=True)
        except ConfigError as exc:
            findings.append(Finding("SCH100", Severity.ERROR, str(exc), where))
            continue
        except psycopg.Error as exc:
            findings.append(
                Finding(
                    "SCH100", Severity.ERROR, f"database {database!r} is unreachable: {exc}".strip(), where
                )
            )
            continue
        with conn:
            conn.read_only = True
            checked: set[tuple[Any, Any]] = set()
            for ref in refs:
                qwhere = locate(("queues", ref.logical))
                backend = fanout.backends[ref.backend]
                try:
                    if (ref.backend, ref.schema) not in checked:
                        checked.add((ref.backend, ref.schema))
                        backend.check_schema(conn, ref)
                    info = backend.describe_queue(conn, ref)
                except SchedulerError as exc:
                    findings.append(Finding("SCH101", Severity.ERROR, str(exc), qwhere))
                    continue
                infos[ref.logical] = info
                if not info.exists:
                    if ref.create_missing:
                        findings.append(
                            Finding(
                                "SCH102",
                                Severity.WARNING,
                                f"queue {ref.name!r} does not exist yet; `create_missing: true` creates it "
                                f"with policy {ref.policy or 'standard'} at the first fan-out",
                                qwhere,
                            )
                        )
                    else:
                        findings.append(
                            Finding(
                                "SCH102",
                                Severity.ERROR,
                                f"queue {ref.name!r} does not exist in database {database!r}; create it "
                                f"(pg-boss: `{create_queue_snippet(ref)}` in your worker) or set "
                                "`create_missing: true` so the first fan-out creates it with its policy",
                                qwhere,
                            )
                        )
                elif ref.policy and info.policy and ref.policy != info.policy:
                    findings.append(
                        Finding(
                            "SCH103",
                            Severity.WARNING,
                            f"queue {ref.name!r} is declared with policy {ref.policy} but the live queue has "
                            f"policy {info.policy}; the live policy decides what is dropped",
                            locate(("queues", ref.logical, "policy")),
                        )
                    )
    return infos, findings


def live_shared_slots(fanout: Fanout, infos: dict[str, QueueInfo]) -> dict[tuple[str, str], str]:
    """(schedule, logical queue) → live policy, for each fan-out whose rows share one singleton key (or none)
    into an existing queue whose live policy keeps one job per key: what SCH104 reports. `lint`'s SCH001
    leaves these pairs to it (`live_checked`), so one problem is reported once, with the live policy."""
    config = fanout.loaded.config
    found: dict[tuple[str, str], str] = {}
    for name, schedule in config.schedules.items():
        if is_per_entity(schedule.singleton_key):
            continue
        for ref in queues_of(config, schedule):
            info = infos.get(ref.logical)
            if info is None or not info.exists:
                continue
            policy = shared_slot_policy(ref.backend, info.policy, schedule.singleton_key)
            if policy is not None:
                found[(name, ref.logical)] = policy
    return found


def live_policy_findings(fanout: Fanout, infos: dict[str, QueueInfo]) -> list[Finding]:
    """SCH104: a fan-out whose rows share one singleton key (or none) into a live one-per-key queue."""
    config = fanout.loaded.config
    findings: list[Finding] = []
    for (name, logical), policy in live_shared_slots(fanout, infos).items():
        schedule = config.schedules[name]
        ref = resolve_queue(config, logical)
        if schedule.cohort.static is not None:
            n = len(schedule.cohort.static)
            size = f"{n - 1} of its {n} entities" if n > 1 else "nothing now, but every second entity"
        else:
            size = "all but one entity of every tick"
        findings.append(
            Finding(
                "SCH104",
                Severity.ERROR,
                f"schedule {name!r} fans out into queue {ref.name!r}, whose live policy is {policy}, "
                f"with {'no singleton key' if schedule.singleton_key is None else 'the same singleton key for every row'}: "
                f"{size} would be dropped; {singleton_fix(name)}",
                fanout.loaded.locations.of(("schedules", name)),
            )
        )
    return findings


def reader_role_findings(fanout: Fanout) -> list[Finding]:
    """SCH110: on each database that cohort or watcher SQL reads (whose DSN is set), the role it runs as can
    write. The read is READ ONLY and rolled back, so this is defence in depth: a role that can write keeps
    doors open that a transaction cannot close (dblink commits on its own; a superuser writes server files)."""
    config = fanout.loaded.config
    readers: dict[str, list[str]] = {}
    for name, schedule in config.schedules.items():
        if schedule.cohort.sql is not None:
            readers.setdefault(schedule.cohort.database, []).append(f"schedule {name!r}")
    for name, watcher in config.watchers.items():
        if watcher.sql is not None:
            readers.setdefault(watcher.database, []).append(f"watcher {name!r}")
    findings: list[Finding] = []
    for database, users in readers.items():
        where = fanout.loaded.locations.of(("databases", database))
        try:
            dsn = fanout.dsn(database)
        except ConfigError:
            continue  # not set: nothing to check (the cohort's own error says so at run time)
        read_by = users[0] + (f" and {len(users) - 1} more" if len(users) > 1 else "")
        try:
            with psycopg.connect(dsn, connect_timeout=5, autocommit=True) as conn:
                conn.read_only = True
                row = conn.execute(_QUERIES["reader_role_one"]).fetchone()
        except psycopg.Error as exc:
            message = f"cannot check the role cohort and watcher SQL on database {database!r} ({read_by}) runs as: {exc}".strip()
            findings.append(Finding("SCH110", Severity.WARNING, message, where))
            continue
        if row is None:
            continue
        role, superuser, server_files, writable, sample, dblink = row
        reasons: list[str] = []
        if superuser:
            reasons.append("is a superuser")
        elif server_files:
            reasons.append("may write server files or run server programs")
        if writable:
            tables = ", ".join(sample) + (
                f" and {writable - len(sample)} more" if writable > len(sample) else ""
            )
            reasons.append(f"can insert, update, delete or truncate {writable} table(s) ({tables})")
        if dblink:
            reasons.append("can run dblink, whose connections commit on their own")
        if reasons:
            findings.append(
                Finding(
                    "SCH110",
                    Severity.WARNING,
                    f"cohort and watcher SQL on database {database!r} ({read_by}) runs as role {role!r}, "
                    f"which {'; '.join(reasons)}; {READ_ONLY_FIX}",
                    where,
                )
            )
    return findings
