"""The ledger: which ticks were claimed, by whom, with what outcome. It lives in each queue database, in a
schema of our own, so a tick's claim and its jobs commit in one transaction on one connection.

Statements are in `ledger.sql`, migration steps in `migrations.sql`; the schema name is filled only through
`psycopg.sql.Identifier`. Every function takes the connection and the instant it should call "now" (time
is an argument: the runtime's clock, so tests can pin it); none commits unless its docstring says so.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, LiteralString

from psycopg import sql
from psycopg.types.json import Jsonb

from scheduler.runtime.catchup import LedgerRow, Outcome, SkipReason
from scheduler.sqlfile import load_queries

if TYPE_CHECKING:
    from collections.abc import Sequence

    import psycopg

    from scheduler.types import FanoutReport

QUERIES = load_queries("scheduler.runtime", "ledger.sql")
MIGRATION_STEPS = load_queries("scheduler.runtime", "migrations.sql")
_STEP = re.compile(r"^v(?P<version>\d{4})_(?P<name>[a-z0-9_]+)$")


@dataclass(frozen=True, slots=True)
class Migration:
    """One versioned step of the ledger's schema."""

    version: int
    name: str
    text: LiteralString


def migrations() -> list[Migration]:
    """The ledger's migration steps, in version order."""
    steps: list[Migration] = []
    for key, text in MIGRATION_STEPS.items():
        match = _STEP.match(key)
        if match is None:
            raise ValueError(f"migration step {key!r} is not named v<NNNN>_<what>")
        steps.append(Migration(int(match.group("version")), match.group("name"), text))
    return sorted(steps, key=lambda m: m.version)


LATEST_VERSION = migrations()[-1].version
_REPLICA_VERSION = 4
"""The migration step that created the replica table."""


class FiredBy(enum.Enum):
    """Who fanned a tick out (the ledger's `fired_by`, from migration step 5)."""

    SCHEDULED = "scheduled"
    """The sidecar (`scheduler run`), at the tick or catching up."""
    MANUAL = "manual"
    """A person, with `scheduler fire`."""


SIDECAR_CLAIMS: tuple[Outcome, ...] = (Outcome.FAILED,)
"""The rows the sidecar claims over: a failed tick is retried; done and skipped ones are settled."""
MANUAL_CLAIMS: tuple[Outcome, ...] = (Outcome.FAILED, Outcome.SKIPPED)
"""The rows `scheduler fire` claims over: also a tick the sidecar skipped (too old, or by the catch-up
policy), which never fanned out; a done tick only with `--force` (`ALL_CLAIMS`)."""
ALL_CLAIMS: tuple[Outcome, ...] = (Outcome.FAILED, Outcome.SKIPPED, Outcome.DONE)


@dataclass(frozen=True, slots=True)
class RecentTick:
    """A ledger row as `scheduler status` shows it."""

    schedule: str
    tick: datetime
    outcome: str
    reason: str | None
    replica: str
    attempts: int
    started_at: datetime
    finished_at: datetime | None
    accepted: int
    dropped: int
    dropped_by_reason: Mapping[str, int]
    fired_by: str = FiredBy.SCHEDULED.value
    """`scheduled` (the sidecar) or `manual` (`scheduler fire`)."""


@dataclass(frozen=True, slots=True)
class ReplicaRecord:
    """What a running replica says about itself in the ledger (`scheduler status` shows it)."""

    replica: str
    seen_at: datetime
    """Its last heartbeat (every catch-up poll)."""
    seen_every: timedelta
    loaded_at: datetime
    """When the configuration it runs was loaded."""
    files: tuple[str, ...]
    schedules: tuple[str, ...]
    """The enabled schedules of that configuration."""
    reload_failed_at: datetime | None = None
    """Its last failed reload, while no later reload succeeded (it runs the configuration of `loaded_at`)."""
    reload_error: str | None = None
    """The findings of that reload, one per line."""
    live: bool = True
    """Seen within three heartbeats and a minute (as read back by `replicas`)."""


class Ledger:
    """The ledger's statements, bound to one schema name."""

    def __init__(self, schema: str = "scheduler") -> None:
        self.schema = schema
        ident = sql.Identifier(schema)
        self._q = {name: sql.SQL(text).format(schema=ident) for name, text in QUERIES.items()}

    def _run(self, conn: psycopg.Connection[Any], name: str, params: Mapping[str, Any] | None = None) -> Any:
        return conn.execute(self._q[name], params)

    def migrate(self, conn: psycopg.Connection[Any]) -> list[Migration]:
        """Apply the missing migration steps under an advisory lock, so replicas starting together don't race.

        Commits (one transaction for the whole upgrade). Returns the steps applied (empty when up to date).
        """
        applied: list[Migration] = []
        with conn.transaction():
            self._run(conn, "migration_lock", {"key": f"scheduler:migrate:{self.schema}"})
            conn.execute(self._q["migration_bootstrap"])
            row = self._run(conn, "migration_version").fetchone()
            current = row[0] if row and row[0] is not None else 0
            for step in migrations():
                if step.version <= current:
                    continue
                conn.execute(sql.SQL(step.text).format(schema=sql.Identifier(self.schema)))
                self._run(conn, "migration_record", {"version": step.version, "name": step.name})
                applied.append(step)
        return applied

    def version(self, conn: psycopg.Connection[Any]) -> int | None:
        """The applied migration version, or None when the ledger's schema does not exist."""
        exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{self.schema}.migration",)).fetchone()
        if not exists or not exists[0]:
            return None
        row = self._run(conn, "migration_version").fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def horizon(self, conn: psycopg.Connection[Any], schedule: str, now: datetime) -> datetime:
        """The schedule's horizon; the first call for a schedule records `now` as its first sighting.

        Two replicas seeing a new schedule at once: the second one's insert waits for the first's to commit
        and then does nothing, but its own SELECT ran in the statement's earlier snapshot and found no row
        (READ COMMITTED). A second statement, with a new snapshot, reads the row the first one committed.
        """
        params = {"schedule": schedule, "now": now}
        row = self._run(conn, "schedule_state_ensure", params).fetchone()
        if row is None:
            row = self._run(conn, "schedule_state_get", params).fetchone()
        if row is None:
            raise LookupError(f"schedule {schedule!r} has no row in {self.schema}.schedule_state")
        horizon: datetime = row[0]
        return horizon

    def advance(self, conn: psycopg.Connection[Any], schedule: str, horizon: datetime) -> None:
        """Move the schedule's horizon forward to `horizon` (never back)."""
        self._run(conn, "schedule_state_advance", {"schedule": schedule, "horizon": horizon})

    def rows_since(
        self, conn: psycopg.Connection[Any], schedule: str, since: datetime
    ) -> dict[datetime, LedgerRow]:
        """The schedule's rows from `since` on, keyed by tick."""
        cur = self._run(conn, "tick_list_since", {"schedule": schedule, "since": since})
        return {
            tick: LedgerRow(tick=tick, outcome=Outcome(outcome), attempts=attempts, finished_at=finished)
            for tick, outcome, attempts, finished in cur.fetchall()
        }

    def try_lock(self, conn: psycopg.Connection[Any], schedule: str, tick: datetime) -> bool:
        """Lock (schedule, tick) for the open transaction without waiting; False when another holds it."""
        key = f"scheduler:tick:{self.schema}:{schedule}:{tick.isoformat()}"
        row = self._run(conn, "tick_lock", {"key": key}).fetchone()
        return bool(row and row[0])

    def claim(
        self,
        conn: psycopg.Connection[Any],
        schedule: str,
        tick: datetime,
        replica: str,
        now: datetime,
        *,
        fired_by: FiredBy = FiredBy.SCHEDULED,
        over: Sequence[Outcome] = SIDECAR_CLAIMS,
    ) -> int | None:
        """Claim the tick in the open transaction: a new row, or one whose outcome is in `over`. The attempt
        number, or None when the tick has a row of another outcome (the sidecar: done or skipped)."""
        params = {
            "schedule": schedule,
            "tick": tick,
            "replica": replica,
            "now": now,
            "fired_by": fired_by.value,
            "over": [o.value for o in over],
        }
        row = self._run(conn, "tick_claim", params).fetchone()
        return int(row[0]) if row else None

    def get(self, conn: psycopg.Connection[Any], schedule: str, tick: datetime) -> RecentTick | None:
        """The tick's row, or None when it has none (needs migration step 5)."""
        row = self._run(conn, "tick_get", {"schedule": schedule, "tick": tick}).fetchone()
        return RecentTick(*row) if row else None

    def finish(
        self,
        conn: psycopg.Connection[Any],
        schedule: str,
        tick: datetime,
        report: FanoutReport,
        now: datetime,
    ) -> None:
        """Write a claimed tick's counts (in the claim's transaction)."""
        self._run(
            conn,
            "tick_finish",
            {
                "schedule": schedule,
                "tick": tick,
                "now": now,
                "accepted": report.accepted,
                "dropped": report.dropped,
                "dropped_by_reason": Jsonb({r.value: n for r, n in report.dropped_by_reason().items()}),
                "duration_ms": round(report.duration_seconds * 1000, 3),
            },
        )

    def fail(
        self,
        conn: psycopg.Connection[Any],
        schedule: str,
        tick: datetime,
        *,
        reason: str,
        replica: str,
        started_at: datetime,
        now: datetime,
    ) -> int | None:
        """Record the tick as failed (commits); the attempt number, or None when it is done or skipped meanwhile."""
        with conn.transaction():
            row = self._run(
                conn,
                "tick_fail",
                {
                    "schedule": schedule,
                    "tick": tick,
                    "reason": reason,
                    "replica": replica,
                    "started_at": started_at,
                    "now": now,
                },
            ).fetchone()
        return int(row[0]) if row else None

    def skip_many(
        self,
        conn: psycopg.Connection[Any],
        schedule: str,
        skipped: Sequence[tuple[datetime, SkipReason]],
        replica: str,
        now: datetime,
    ) -> list[datetime]:
        """Record ticks as skipped where they have no row yet; the ticks recorded."""
        if not skipped:
            return []
        cur = self._run(
            conn,
            "tick_skip_many",
            {
                "schedule": schedule,
                "ticks": [t for t, _ in skipped],
                "reasons": [r.value for _, r in skipped],
                "replica": replica,
                "now": now,
            },
        )
        return [row[0] for row in cur.fetchall()]

    def recent(self, conn: psycopg.Connection[Any], schedules: Sequence[str], limit: int) -> list[RecentTick]:
        """The newest `limit` rows of each schedule, newest first."""
        cur = self._run(conn, "tick_recent_many", {"schedules": list(schedules), "limit": limit})
        return [RecentTick(*row) for row in cur.fetchall()]

    def record_replica(self, conn: psycopg.Connection[Any], record: ReplicaRecord) -> None:
        """Write `record` (and forget replicas not seen for a week). Commits."""
        with conn.transaction():
            self._run(
                conn,
                "replica_record",
                {
                    "replica": record.replica,
                    "seen_at": record.seen_at,
                    "seen_every": record.seen_every,
                    "loaded_at": record.loaded_at,
                    "files": list(record.files),
                    "schedules": list(record.schedules),
                    "reload_failed_at": record.reload_failed_at,
                    "reload_error": record.reload_error,
                },
            )
            self._run(conn, "replica_prune", {"now": record.seen_at})

    def replicas(self, conn: psycopg.Connection[Any], now: datetime) -> list[ReplicaRecord]:
        """Every replica's record, live ones first (empty before migration step 4)."""
        if (self.version(conn) or 0) < _REPLICA_VERSION:
            return []
        cur = self._run(conn, "replica_list", {"now": now})
        return [
            ReplicaRecord(
                replica=r[0],
                seen_at=r[1],
                seen_every=r[2],
                loaded_at=r[3],
                files=tuple(r[4]),
                schedules=tuple(r[5]),
                reload_failed_at=r[6],
                reload_error=r[7],
                live=bool(r[8]),
            )
            for r in cur.fetchall()
        ]
