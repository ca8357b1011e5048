"""Sentry: initialized only when a DSN is set. Errors are captured explicitly where they happen (a failed
tick, a pass that could not reach its database); metrics go through `observe.metrics.Metrics`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

import sentry_sdk
from sentry_sdk.integrations.logging import LoggingIntegration

if TYPE_CHECKING:
    from scheduler.runtime.settings import Settings


def init_sentry(settings: Settings, transport: Any = None) -> bool:
    """Initialize the SDK from the settings; False (and nothing done) when no DSN is set.

    `transport` replaces the network transport (tests pass a capturing one).
    """
    if settings.sentry_dsn is None or not settings.sentry_dsn.get_secret_value():
        return False
    options: dict[str, Any] = {}
    if transport is not None:
        options["transport"] = transport
    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        environment=settings.sentry_environment,
        release=f"scheduler@{_version()}",
        server_name=settings.replica_id,
        # Error events come from explicit capture_exception calls; log lines are not turned into events.
        integrations=[LoggingIntegration(level=None, event_level=None)],
        **options,
    )
    return True


def _version() -> str:
    try:
        return version("pg-fanout-scheduler")
    except PackageNotFoundError:
        return "0+unknown"
