"""A watcher re-emits around a row the queue cannot hold: that row is `invalid_row`, the others go in."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scheduler.types import DropReason
from scheduler.watch.passes import watch_once
from tests.integration.watcher.conftest import add_messages, db_now, jobs

if TYPE_CHECKING:
    from scheduler.fanout import Fanout

LONG_ID = "m" * 2700
"""Its singleton key `chat-message:<id>` is past what pg-boss's indexes take for queue lane-ui."""


def test_a_stuck_row_past_the_index_limit_is_dropped_and_the_others_reemitted(
    db: str, fanout: Fanout
) -> None:
    """Two stuck messages, one whose singleton key no index takes: m1 is re-emitted, the long one is
    reported invalid_row with the reason, and the pass writes nothing for it."""
    now = db_now(db)
    add_messages(db, now, ("m1", "GENERATING", None, 300), (LONG_ID, "GENERATING", None, 300))
    result = watch_once(fanout, "chat-generating", now, replica="r1")
    ui = result.report.queues["ui"]
    assert [a.key for a in ui.accepted_sample] == ["m1"]
    (drop,) = ui.dropped_sample
    assert (drop.key, drop.reason) == (LONG_ID, DropReason.INVALID_ROW)
    assert drop.detail is not None
    assert "is 2,713 bytes; the queue's unique index holds at most 2,632" in drop.detail
    assert jobs(db, "lane-ui") == [("chat-message:m1", {"messageId": "m1"}, "created")]
