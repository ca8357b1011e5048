"""Checks that read the live queue databases: schema versions, missing queues, live policies.

Used by `validate --check-db` and `dry-run`. They only read; a database that cannot be reached is a
finding, not a crash.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg

from scheduler.config import Finding, Severity, queues_of
from scheduler.config.lint import shared_slot_policy
from scheduler.errors import ConfigError, SchedulerError
from scheduler.planning.keys import is_per_entity

if TYPE_CHECKING:
    from scheduler.fanout import Fanout
    from scheduler.types import QueueInfo, QueueRef


def singleton_fix(schedule: str) -> str:
    return f'add `singleton_key: "{schedule}:{{key}}"` so each entity gets its own slot'


def read_queues(fanout: Fanout) -> tuple[dict[str, QueueInfo], list[Finding]]:
    """Describe every declared queue in its live database. Returns infos by logical name and findings."""
    config = fanout.loaded.config
    locate = fanout.loaded.locations.of
    infos: dict[str, QueueInfo] = {}
    findings: list[Finding] = []
    by_db: dict[str, list[QueueRef]] = {}
    from scheduler.config import resolve_queue

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
                                "(pg-boss: boss.createQueue) or set `create_missing: true`",
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


def live_policy_findings(fanout: Fanout, infos: dict[str, QueueInfo]) -> list[Finding]:
    """SCH104: a fan-out whose rows share one singleton key (or none) into a live one-per-key queue."""
    config = fanout.loaded.config
    findings: list[Finding] = []
    for name, schedule in config.schedules.items():
        if is_per_entity(schedule.singleton_key):
            continue
        for ref in queues_of(config, schedule):
            info = infos.get(ref.logical)
            if info is None or not info.exists:
                continue
            policy = shared_slot_policy(ref.backend, info.policy, schedule.singleton_key)
            if policy is None:
                continue
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
