"""Sentry: initialized only when a DSN is set. Errors are captured explicitly where they happen; metrics go
through `observe.metrics.Metrics`. What `scheduler run` sends:

- a failed tick (a cohort query error or timeout, a missing queue or queue schema, a row the backend
  refused): one event per failed attempt;
- a queue or ledger database that cannot be reached (at start, on a reload, at a tick): one event when it
  goes down, none while it stays down, again after it came back and went down again;
- a watcher pass that failed (its queue is missing, its query failed): one event per distinct failure
  while it lasts;
- a reload that raised an unexpected error, and a health request that failed.

No secret leaves in an event. Frame local variables are not collected (the SDK's `data_collection`
`stack_frame_variables: False`, plus `include_local_variables=False` on 2.x, where some paths still read
it), nor is user data (`user_info: False`, which replaces `send_default_pii=False`: 2.75 warns that it
ignores the latter beside `data_collection`, and 3.x no longer takes it). Every event (exception values, messages,
`extra`, contexts, tags, breadcrumbs, request, threads) and every breadcrumb, log and metric goes
through the process's `Redactor`, twice for events: in an event processor before the SDK serializes and
trims it (so a long value cannot be cut in the middle of a password), and in `before_send` after. A
redaction that fails drops the event (the SDK discards an event whose `before_send` raised).
"""

from __future__ import annotations

import inspect
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

import sentry_sdk
from sentry_sdk.consts import ClientConstructor
from sentry_sdk.integrations import Integration
from sentry_sdk.integrations.logging import LoggingIntegration
from sentry_sdk.scope import add_global_event_processor

from scheduler.observe.redact import Redactor

if TYPE_CHECKING:
    from sentry_sdk._types import Event, Hint

    from scheduler.runtime.settings import Settings

_OPTIONS = frozenset(inspect.signature(ClientConstructor.__init__).parameters)
"""The options this sentry-sdk takes: 2.75 has `data_collection` and still `include_local_variables`; 3.x
has only `data_collection` (it refuses the options it dropped)."""


class _Redaction(Integration):
    """Runs the redactor over every event before the SDK serializes it (a global event processor, set up
    once per process, that asks the current client for its redactor)."""

    identifier = "scheduler_redaction"

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor

    @staticmethod
    def setup_once() -> None:
        add_global_event_processor(_redact_event)


def _redact_event(event: Event, hint: Hint) -> Event | None:
    integration = sentry_sdk.get_client().get_integration(_Redaction)
    if integration is None:
        return event
    redacted: Event = integration.redactor.value(event)
    return redacted


def sentry_options(redactor: Redactor) -> dict[str, Any]:
    """The options that keep secrets out of what the SDK sends (see the module docstring)."""

    def redact(item: dict[str, Any], hint: Any) -> dict[str, Any]:
        redacted: dict[str, Any] = redactor.value(item)
        return redacted

    options: dict[str, Any] = {
        "data_collection": {
            "user_info": False,
            "stack_frame_variables": False,
            "database_query_data": False,
            "http_bodies": [],
        },
        "before_send": redact,
        "before_breadcrumb": redact,
    }
    if "include_local_variables" in _OPTIONS:
        options["include_local_variables"] = False
    for hook in ("before_send_log", "before_send_metric"):
        if hook in _OPTIONS:
            options[hook] = redact
    return options


def init_sentry(settings: Settings, transport: Any = None, *, redactor: Redactor | None = None) -> bool:
    """Initialize the SDK from the settings; False (and nothing done) when no DSN is set.

    `redactor` scrubs everything sent (default: one that knows the secret-looking values of this process's
    environment). `transport` replaces the network transport (tests pass a capturing one).
    """
    if settings.sentry_dsn is None or not settings.sentry_dsn.get_secret_value():
        return False
    redactor = redactor if redactor is not None else Redactor.from_environ()
    options = sentry_options(redactor)
    if transport is not None:
        options["transport"] = transport
    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        environment=settings.sentry_environment,
        release=f"scheduler@{_version()}",
        server_name=settings.replica_id,
        # Error events come from explicit capture_exception calls; log lines are not turned into events.
        integrations=[LoggingIntegration(level=None, event_level=None), _Redaction(redactor)],
        **options,
    )
    return True


def _version() -> str:
    try:
        return version("pg-fanout-scheduler")
    except PackageNotFoundError:
        return "0+unknown"
