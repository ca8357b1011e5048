"""Watcher references: exactly one of queue/lane unless queue-level, and sql unless queue-level."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.unit.config.conftest import Errors, Load, Write


def watcher(*lines: str) -> str:
    """A `watchers:` section with one watcher `w` (line 11 `watchers:`, line 12 `w:`, 13 on its keys)."""
    return "watchers:\n  w:\n" + "".join(f"    {line}\n" for line in lines)


def test_watcher_with_queue_and_lane_is_rejected(write: Write, errors: Errors) -> None:
    """A watcher naming both a queue and a lane is CFG006 at its lane."""
    path = write(watcher("sql: select 1 as key", "queue: plain", "lane: chat"))
    assert errors(path) == [
        f"{path}:15:11: CFG006 error: watchers.w: has both `queue: plain` and `lane: chat`; keep `queue` to "
        "re-emit every entity to one queue, or `lane` to route each row by its source"
    ]


def test_watcher_without_sql_is_rejected_unless_queue_level(write: Write, errors: Errors) -> None:
    """A watcher with neither sql nor queue_level is CFG006."""
    path = write(watcher("queue: plain"))
    assert errors(path) == [
        f"{path}:12:3: CFG006 error: watchers.w: has no `sql`; add a query on the app database returning "
        "`key` (and `data`, `source`) for each stuck entity, or set `queue_level: true` to scan the queue's "
        "own tables"
    ]


def test_queue_level_watcher_needs_a_queue(write: Write, errors: Errors) -> None:
    """A queue-level watcher on a lane (no queue) is CFG006."""
    path = write(watcher("lane: chat", "queue_level: true"))
    assert errors(path) == [
        f"{path}:12:3: CFG006 error: watchers.w: `queue_level: true` scans one queue's tables; add "
        "`queue: <a key of queues:>`"
    ]


def test_queue_level_watcher_without_sql_is_valid(load: Load) -> None:
    """A queue-level watcher with a queue and reemit_stalled needs no sql."""
    loaded = load(watcher("queue: plain", "queue_level: true", "reemit_stalled: true"))
    assert loaded.config.watchers["w"].reemit_stalled is True
