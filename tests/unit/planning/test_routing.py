"""Lane routing: source → logical queue, with the default for anything else."""

from __future__ import annotations

from scheduler.config.models import Lane
from scheduler.planning.routing import Route, queue_for

LANE = Lane(
    default="chat-ui", routes={"scheduled_report": "chat-automation", "data_change": "chat-automation"}
)


def test_routed_source_goes_to_its_queue() -> None:
    """A source with a route goes to that route's queue, not defaulted."""
    assert queue_for(LANE, "scheduled_report") == Route("chat-automation", defaulted=False)


def test_unknown_source_goes_to_default() -> None:
    """A source without a route goes to the lane's default, marked defaulted."""
    assert queue_for(LANE, "user_message") == Route("chat-ui", defaulted=True)


def test_missing_source_goes_to_default() -> None:
    """A row without a source (None) goes to the lane's default, marked defaulted."""
    assert queue_for(LANE, None) == Route("chat-ui", defaulted=True)


def test_route_to_the_default_queue_is_not_defaulted() -> None:
    """A source explicitly routed to the default queue counts as routed."""
    lane = Lane(default="chat-ui", routes={"ui": "chat-ui"})
    assert queue_for(lane, "ui") == Route("chat-ui", defaulted=False)
