"""Values that cross the seams of the scheduler: planned jobs, queue references and enqueue outcomes.

Everything here is immutable: a frozen dataclass, an enum, or, for the two values made once per planned
job (`JobSpec`, `Accepted`), a named tuple, which costs a quarter of a frozen dataclass to build. The
planner produces `JobSpec` batches, a backend turns a batch into a `ChunkResult` (one outcome per planned
job, in input order), and the fan-out folds chunk results into a `FanoutReport`. Nothing in this module
does I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, TypeAlias

JsonObject: TypeAlias = Mapping[str, Any]
"""A JSON object (job payload). Both backends need an object: procrastinate passes it as kwargs."""

Row: TypeAlias = Mapping[str, Any]
"""One cohort row: at least a `key`, usually `data`, optionally `source` (for lanes)."""


class JsonText(Mapping[str, Any]):
    """A JSON object payload kept as the text the database sent (a cohort's json/jsonb `data` column).

    A bulk enqueue writes `text` as it is, so a payload crosses the scheduler without being parsed and
    serialized again; anything that looks inside it (a `{data.…}` key template, procrastinate's argument
    check, a dry-run preview) parses it once, on first look, with `json.loads`. Equal to any mapping with
    the same items. Only build one from text that is valid JSON whose value is an object.
    """

    __slots__ = ("_parsed", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._parsed: dict[str, Any] | None = None

    def _object(self) -> dict[str, Any]:
        parsed = self._parsed
        if parsed is None:
            import json

            parsed = self._parsed = json.loads(self.text)
        return parsed

    def __getitem__(self, name: str) -> Any:
        return self._object()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._object())

    def __len__(self) -> int:
        return len(self._object())

    def __contains__(self, name: object) -> bool:
        return name in self._object()

    def __repr__(self) -> str:
        return f"JsonText({self.text!r})"


class BackendKind(enum.Enum):
    """The queue system a queue belongs to."""

    PGBOSS = "pgboss"
    """pg-boss 12 (schema version 46): jobs in `pgboss.job`, policies enforced by partial unique indexes."""

    PROCRASTINATE = "procrastinate"
    """procrastinate 3.x: jobs in `procrastinate_jobs`, one `todo` job per `queueing_lock`."""


class DropReason(enum.Enum):
    """Why a planned job was not enqueued. Every drop carries one of these."""

    POLICY_CONFLICT = "policy_conflict"
    """The queue's policy already holds a job for this singleton key (holder id and state are reported)."""

    DUPLICATE_IN_COHORT = "duplicate_in_cohort"
    """Another row of the same tick has the same singleton key; the first one won."""

    QUEUE_MISSING = "queue_missing"
    """The target queue does not exist; nothing of the tick was enqueued."""

    THROTTLED = "throttled"
    """A throttle slot (pg-boss `singleton_on`) for this key is already taken."""

    ALREADY_QUEUED = "already_queued"
    """A watcher re-emit found the entity's job still waiting: normal, counted apart from real drops."""

    REEMIT_EXHAUSTED = "reemit_exhausted"
    """A watcher re-emitted this entity `max_reemits` times within its window and leaves it alone."""

    INVALID_ROW = "invalid_row"
    """The queue cannot hold the row (a NUL or a lone surrogate in its text, a non-finite number in its
    payload, a singleton key past the unique index's size limit): it is left out and the rest of the tick
    goes in; `Dropped.detail` says what is wrong."""


@dataclass(frozen=True, slots=True)
class JobOptions:
    """Job options from a schedule. `None` means "use the queue's own setting"."""

    priority: int = 0
    retry_limit: int | None = None
    retry_delay_seconds: int | None = None
    expire_in_seconds: int | None = None


DEFAULT_OPTIONS = JobOptions()


class JobSpec(NamedTuple):
    """One planned job: what the planner decided for one cohort entity at one tick."""

    key: str
    """The entity key (the cohort row's `key`, as text). Reports name entities by it."""
    singleton_key: str | None
    """The rendered per-entity dedup key (pg-boss `singleton_key`, procrastinate `queueing_lock`)."""
    data: JsonObject
    """The payload: always a JSON object."""
    start_after: datetime
    """Absolute, timezone-aware instant before which no worker may start the job."""
    options: JobOptions = DEFAULT_OPTIONS


@dataclass(frozen=True, slots=True)
class QueueRef:
    """A queue as declared in the config, resolved from its logical name."""

    logical: str
    """The name used inside schedule files (`insights`)."""
    name: str
    """The real queue name in the queue system (`generate-insight-post`)."""
    backend: BackendKind
    database: str
    """Logical database name (a key of `databases:`)."""
    policy: str | None = None
    """The declared policy (pg-boss); the live one is read by `describe_queue`."""
    task: str | None = None
    """procrastinate: the registered task name every job of this queue runs."""
    schema: str | None = None
    """The schema holding the queue system's tables (pg-boss default `pgboss`; procrastinate: search_path)."""
    create_missing: bool = False
    dsn_env: str | None = field(default=None, compare=False)
    """The environment variable holding the queue database's DSN (from `databases:`), for the commands a
    message suggests (`"$QUEUE_DATABASE_URL"`): its name only, never its value. Not part of the identity."""

    def dsn_arg(self) -> str:
        """The queue database's DSN as a shell argument in a suggested command: the variable, quoted."""
        if self.dsn_env is None:
            return f"<DSN of database {self.database!r}>"
        return f'"${self.dsn_env}"'


@dataclass(frozen=True, slots=True)
class Batch:
    """An ordered batch of planned jobs for one queue (one chunk of one tick's plan)."""

    queue: QueueRef
    jobs: tuple[JobSpec, ...]


class Accepted(NamedTuple):
    """A planned job that is now in the queue."""

    key: str
    job_id: str


@dataclass(frozen=True, slots=True)
class Dropped:
    """A planned job that is not in the queue, and why."""

    key: str
    reason: DropReason
    singleton_key: str | None = None
    policy: str | None = None
    """The policy that dropped it (pg-boss policy name, or `queueing_lock` for procrastinate)."""
    holder_id: str | None = None
    """The id of the job that holds the slot, where one exists."""
    holder_state: str | None = None
    detail: str | None = None
    """What is wrong with the row (`invalid_row`), in one sentence; None for the other reasons."""

    def as_json(self) -> dict[str, str | None]:
        """The drop as a JSON object, as every `--json` report prints it."""
        return {
            "key": self.key,
            "reason": self.reason.value,
            "singleton_key": self.singleton_key,
            "policy": self.policy,
            "holder_id": self.holder_id,
            "holder_state": self.holder_state,
            "detail": self.detail,
        }


Outcome: TypeAlias = Accepted | Dropped


@dataclass(frozen=True, slots=True)
class ChunkResult:
    """One outcome per planned job of a batch, in the batch's order. `len(outcomes) == len(batch.jobs)`."""

    queue: QueueRef
    outcomes: tuple[Outcome, ...]


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """What `describe_queue` learned about a queue in the live database."""

    queue: QueueRef
    exists: bool
    policy: str | None = None
    """Live policy: a pg-boss policy name; `queueing_lock` for procrastinate."""
    retry_limit: int | None = None
    retry_delay_seconds: int | None = None
    expire_seconds: int | None = None
    notify: bool = False
    schema_version: str | None = None
    """The peer's schema version as found (pg-boss `46`; procrastinate: a description of the probe)."""


@dataclass
class QueueTotals:
    """Counts for one queue of one fan-out, with the first drops kept for the report."""

    queue: QueueRef
    planned: int = 0
    accepted: int = 0
    dropped_by_reason: dict[DropReason, int] = field(default_factory=dict)
    accepted_sample: list[Accepted] = field(default_factory=list)
    dropped_sample: list[Dropped] = field(default_factory=list)

    @property
    def dropped(self) -> int:
        return sum(self.dropped_by_reason.values())


@dataclass
class FanoutReport:
    """The outcome of one tick of one schedule: per queue counts and, up to `detail_limit`, every outcome.

    Invariant (checked by `add`): for every queue, accepted + dropped == planned.
    """

    schedule: str
    tick: datetime
    detail_limit: int | None = 10_000
    queues: dict[str, QueueTotals] = field(default_factory=dict)
    cohort_size: int = 0
    duration_seconds: float = 0.0
    connections_used: int = 0
    dry: bool = False
    failure: str | None = None
    """Why nothing of the tick was written (a missing queue), or None."""

    def add(self, result: ChunkResult) -> None:
        """Fold one chunk's outcomes into the totals (mutates the report)."""
        totals = self.queues.get(result.queue.logical)
        if totals is None:
            totals = self.queues[result.queue.logical] = QueueTotals(result.queue)
        limit = self.detail_limit
        outcomes = result.outcomes
        # Counted by list operations rather than one outcome at a time: this runs between a fan-out's
        # chunks, while the queue database waits for the next one.
        accepted = [o for o in outcomes if type(o) is Accepted]
        totals.planned += len(outcomes)
        totals.accepted += len(accepted)
        kept = totals.accepted_sample
        kept.extend(accepted if limit is None else accepted[: max(0, limit - len(kept))])
        if len(accepted) == len(outcomes):
            return
        for outcome in outcomes:
            if isinstance(outcome, Dropped):
                reason = outcome.reason
                totals.dropped_by_reason[reason] = totals.dropped_by_reason.get(reason, 0) + 1
                if limit is None or len(totals.dropped_sample) < limit:
                    totals.dropped_sample.append(outcome)

    @property
    def planned(self) -> int:
        return sum(t.planned for t in self.queues.values())

    @property
    def accepted(self) -> int:
        return sum(t.accepted for t in self.queues.values())

    @property
    def dropped(self) -> int:
        return sum(t.dropped for t in self.queues.values())

    def dropped_by_reason(self) -> dict[DropReason, int]:
        counts: dict[DropReason, int] = {}
        for totals in self.queues.values():
            for reason, n in totals.dropped_by_reason.items():
                counts[reason] = counts.get(reason, 0) + n
        return counts
