"""The watcher's pure decisions: ledger bounds, already_queued mapping, default keys, alias moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scheduler.config.models import Config, QueueDef, Watcher
from scheduler.types import Accepted, BackendKind, Dropped, DropReason, JobSpec
from scheduler.watch.plan import (
    alias_every,
    alias_moves,
    as_reemit_outcome,
    default_singleton_key,
    split_reemits,
    watcher_schedule,
)

NOW = datetime(2026, 1, 5, 12, tzinfo=UTC)


def job(key: str) -> JobSpec:
    return JobSpec(key=key, singleton_key=f"w:{key}", data={}, start_after=NOW)


def test_entities_at_max_reemits_are_exhausted_and_left_out() -> None:
    """An entity re-emitted max_reemits times in the window is reemit_exhausted; the others are sent."""
    split = split_reemits([job("a"), job("b"), job("c")], {"a": 3, "b": 2}, max_reemits=3)
    assert [j.key for j in split.send] == ["b", "c"]
    assert split.exhausted == {0: Dropped("a", DropReason.REEMIT_EXHAUSTED, "w:a")}


def test_policy_conflict_of_a_reemit_is_already_queued() -> None:
    """A re-emit the queue's policy refuses is already_queued, keeping its holder."""
    refused = Dropped("a", DropReason.POLICY_CONFLICT, "w:a", "stately", "id-1", "created")
    assert as_reemit_outcome(refused) == Dropped(
        "a", DropReason.ALREADY_QUEUED, "w:a", "stately", "id-1", "created"
    )


def test_accepted_reemit_is_kept() -> None:
    """An accepted re-emit stays accepted."""
    assert as_reemit_outcome(Accepted("a", "id-1")) == Accepted("a", "id-1")


def test_default_singleton_key_escapes_braces_in_the_watcher_name() -> None:
    """The default key is `<watcher>:{key}`, with braces of the name escaped."""
    assert default_singleton_key("odd{name}") == "odd{{name}}:{key}"


def test_watcher_schedule_uses_the_default_key_and_no_stagger() -> None:
    """A watcher without singleton_key plans as a schedule keyed `<watcher>:{key}`, unstaggered."""
    schedule = watcher_schedule("chat", Watcher(sql="select 1 as key", lane="chat-lane"))
    assert (schedule.singleton_key, schedule.lane, schedule.stagger.window) == (
        "chat:{key}",
        "chat-lane",
        timedelta(0),
    )


def test_alias_moves_group_by_target_database_and_skip_self_aliases() -> None:
    """Aliases move into their target's database; an alias of a queue's own name moves nothing."""
    config = Config(
        queues={
            "ui": QueueDef(name="ui-v2", backend=BackendKind.PGBOSS),
            "other": QueueDef(name="other", backend=BackendKind.PGBOSS, database="second"),
        },
        aliases={"ui-v1": "ui", "ui-v2": "ui", "old-other": "other"},
    )
    moves = alias_moves(config)
    assert {db: [(m.old, m.target.name) for m in ms] for db, ms in moves.items()} == {
        "queue": [("ui-v1", "ui-v2")],
        "second": [("old-other", "other")],
    }


def test_alias_pass_runs_as_often_as_the_most_frequent_watcher() -> None:
    """The alias pass interval is the smallest watcher `every`."""
    config = Config(
        watchers={"a": Watcher(every="2m", sql="x", queue="q"), "b": Watcher(every="45s", sql="x", queue="q")}
    )
    assert alias_every(config) == timedelta(seconds=45)
