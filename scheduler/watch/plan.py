"""Pure decisions of the watcher and alias passes: no I/O, values in and out."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING

from scheduler.config.models import Cohort, Config, Schedule, Watcher
from scheduler.config.validate import lane_queues, resolve_queue
from scheduler.errors import ConfigError
from scheduler.types import Dropped, DropReason, JobSpec, Outcome, QueueRef

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "AliasMove",
    "ReemitSplit",
    "alias_moves",
    "as_reemit_outcome",
    "default_singleton_key",
    "split_reemits",
    "watcher_database",
    "watcher_queues",
    "watcher_schedule",
]


def default_singleton_key(watcher: str) -> str:
    """`<watcher>:{key}`, the singleton-key template of a watcher that names none (braces in the name escaped)."""
    return watcher.replace("{", "{{").replace("}", "}}") + ":{key}"


def watcher_schedule(name: str, watcher: Watcher) -> Schedule:
    """The watcher as a schedule the planner takes: its SQL as the cohort, its queue or lane, its singleton
    key (default `<watcher>:{key}`) and priority; no stagger, so every re-emit starts at the pass's instant."""
    return Schedule(
        cron="* * * * *",
        cohort=Cohort(sql=watcher.sql or "select 1 as key", database=watcher.database),
        queue=watcher.queue,
        lane=None if watcher.queue is not None else watcher.lane,
        singleton_key=watcher.singleton_key or default_singleton_key(name),
        priority=watcher.priority,
    )


def watcher_queues(config: Config, watcher: Watcher) -> list[QueueRef]:
    """The queues a watcher can re-emit to: its queue, or every queue of its lane (default first)."""
    if watcher.queue is not None:
        return [resolve_queue(config, watcher.queue)]
    if watcher.lane is not None:
        return [resolve_queue(config, q) for q in lane_queues(config, watcher.lane)]
    raise ConfigError("the watcher has neither `queue` nor `lane`; add one of them")


def watcher_database(config: Config, name: str) -> str:
    """The one queue database a watcher writes to (its pass and its ledger rows commit there together)."""
    databases = sorted({q.database for q in watcher_queues(config, config.watchers[name])})
    if len(databases) != 1:
        raise ConfigError(
            f"watcher {name!r} routes to queues in {len(databases)} databases ({', '.join(databases)}); a "
            "pass commits its re-emits and its ledger rows in one transaction, so put its queues in one database"
        )
    return databases[0]


@dataclass(frozen=True, slots=True)
class ReemitSplit:
    """A batch of would-be re-emits split by the ledger: the jobs to try, and the entities past their bound."""

    send: tuple[JobSpec, ...]
    exhausted: dict[int, Dropped]
    """Batch index → `reemit_exhausted` drop."""


def split_reemits(jobs: Sequence[JobSpec], counts: Mapping[str, int], max_reemits: int) -> ReemitSplit:
    """Keep the jobs whose entity was re-emitted fewer than `max_reemits` times in the window (`counts`:
    entity key → re-emits in the window); the others are `reemit_exhausted` and left alone."""
    exhausted = {
        i: Dropped(key=job.key, reason=DropReason.REEMIT_EXHAUSTED, singleton_key=job.singleton_key)
        for i, job in enumerate(jobs)
        if counts.get(job.key, 0) >= max_reemits
    }
    return ReemitSplit(tuple(j for i, j in enumerate(jobs) if i not in exhausted), exhausted)


def as_reemit_outcome(outcome: Outcome) -> Outcome:
    """A re-emit refused because the queue's policy holds a job for its key is `already_queued` (normal);
    every other outcome is kept."""
    if isinstance(outcome, Dropped) and outcome.reason is DropReason.POLICY_CONFLICT:
        return replace(outcome, reason=DropReason.ALREADY_QUEUED)
    return outcome


@dataclass(frozen=True, slots=True)
class AliasMove:
    """Jobs waiting on an old real queue name go to `target` (a declared queue)."""

    old: str
    target: QueueRef


def alias_moves(config: Config) -> dict[str, list[AliasMove]]:
    """Queue database → the alias moves into it, in the order the aliases are declared. An alias whose target
    is undeclared, or whose old name is the target's own name, moves nothing and is left out."""
    moves: dict[str, list[AliasMove]] = {}
    for old, logical in config.aliases.items():
        if logical not in config.queues:
            continue
        target = resolve_queue(config, logical)
        if target.name == old:
            continue
        moves.setdefault(target.database, []).append(AliasMove(old, target))
    return moves


def alias_every(config: Config, default: timedelta = timedelta(seconds=30)) -> timedelta:
    """How often the alias pass runs: as often as the most frequent watcher, else `default`."""
    return min((w.every for w in config.watchers.values()), default=default)
