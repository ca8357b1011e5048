"""The pure planning core: cron ticks, stagger offsets, lane routing, singleton keys and the plan of a tick.

The names below are re-exported lazily (PEP 562): `scheduler.config.models` imports `planning.keys`, and
eager re-exports would import `planning.plan`, which imports `config.models` while it is half-initialised.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scheduler.planning.keys import TemplateError, is_per_entity, render_key, template_fields
    from scheduler.planning.plan import (
        DEFAULT_CHUNK_SIZE,
        UNKNOWN_SOURCES_KEPT,
        PlanContext,
        PlanStats,
        plan_batches,
    )
    from scheduler.planning.routing import Route, queue_for
    from scheduler.planning.stagger import stagger_offset
    from scheduler.planning.ticks import min_interval, next_tick, previous_tick, schedule_ticks, ticks

_EXPORTS = {
    "DEFAULT_CHUNK_SIZE": "plan",
    "UNKNOWN_SOURCES_KEPT": "plan",
    "PlanContext": "plan",
    "PlanStats": "plan",
    "Route": "routing",
    "TemplateError": "keys",
    "is_per_entity": "keys",
    "min_interval": "ticks",
    "next_tick": "ticks",
    "plan_batches": "plan",
    "previous_tick": "ticks",
    "queue_for": "routing",
    "render_key": "keys",
    "schedule_ticks": "ticks",
    "stagger_offset": "stagger",
    "template_fields": "keys",
    "ticks": "ticks",
}

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "UNKNOWN_SOURCES_KEPT",
    "PlanContext",
    "PlanStats",
    "Route",
    "TemplateError",
    "is_per_entity",
    "min_interval",
    "next_tick",
    "plan_batches",
    "previous_tick",
    "queue_for",
    "render_key",
    "schedule_ticks",
    "stagger_offset",
    "template_fields",
    "ticks",
]


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
