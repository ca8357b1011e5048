"""Lane routing: a row's `source` picks its logical queue. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scheduler.config.models import Lane

__all__ = ["Route", "queue_for"]


@dataclass(frozen=True, slots=True)
class Route:
    """Where a row goes: a logical queue, and whether the lane's default was used."""

    queue: str
    """The logical queue (a key of `queues:`)."""
    defaulted: bool
    """True when the source was None or has no route in the lane, so `lane.default` was used."""


def queue_for(lane: Lane, source: str | None) -> Route:
    """The route of a row with `source` through `lane`: its route if it has one, else the lane's default."""
    if source is not None:
        queue = lane.routes.get(source)
        if queue is not None:
            return Route(queue, defaulted=False)
    return Route(lane.default, defaulted=True)
