"""`scheduler run`: the long-lived sidecar (see `scheduler.runtime.service`)."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sentry_sdk
from pydantic import ValidationError

from scheduler.cli import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, HelpFormatter
from scheduler.commands.common import DEFAULT_PATHS, add_paths
from scheduler.commands.failures import oneline
from scheduler.config import load_config
from scheduler.config.validate import resolve_dsn
from scheduler.errors import ConfigError
from scheduler.observe.log import configure, event
from scheduler.observe.metrics import Metrics
from scheduler.observe.redact import Environ, Redactor
from scheduler.runtime.databases import ledger_databases
from scheduler.runtime.health import CachedCheck, HealthServer
from scheduler.runtime.sentry import init_sentry
from scheduler.runtime.service import Service
from scheduler.runtime.settings import Clock, Settings, settings_help

if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping
    from types import FrameType

HELP = "run the schedules: fan out every tick exactly once, across replicas and restarts"
DESCRIPTION = """\
Runs until SIGTERM (or SIGINT). Each tick of each enabled schedule is claimed in the ledger (a schema
in the queue database, created and upgraded at start) and fanned out in the same transaction, so any
number of replicas fan out each tick exactly once. Missed ticks inside a schedule's catch_up window are
fanned out on start (policy all|latest|none); older ones are recorded as skipped. A failed tick is
retried with backoff inside the window.

SIGHUP, or a change to a schedule file, reloads the files. A reload never stops the sidecar: whatever
fails while loading the new files (invalid YAML or values, any unexpected error, a schedule whose
queues span two databases), the running configuration keeps firing, each finding is logged
(config_invalid, with file:line:col where known), /readyz says "reload failed at <time>: <finding>"
under checks.config (still 200: the old configuration is valid and running) and `scheduler status`
shows it per replica. A reload that would leave no enabled schedule while some run (an emptied file or
directory) is refused the same way unless SCHEDULER_ALLOW_EMPTY_RELOAD=true. A queue database that
is down does not refuse a reload (its passes retry; /readyz reports it). Invalid files at start:
exit 1 with the findings; a DSN variable not set (for the ledger's database, or one a cohort or
watcher reads) or a health port in use: exit 1 with one line naming the fix, before any database
is touched. SIGTERM lets the tick in flight finish (up to the grace period) and exits 0
(1 when the grace period ran out).

HTTP: /healthz, /readyz (config loaded, databases reachable, ledger migrated: checked by one background
thread every SCHEDULER_READINESS_INTERVAL, whatever the request rate), /metrics (Prometheus).

Guarantees. No secret leaves the process: database DSNs and their passwords, and the values of
secret-looking environment variables (*PASSWORD*, *SECRET*, *TOKEN*, *DSN*, DATABASE_URL, ...), are
replaced by *** in every log line, /readyz answer, ledger reason, `status` and --json output, error
message and Sentry event (Sentry gets no frame variables and no user data; every event, breadcrumb and
metric is scrubbed before it is sent). Text logs escape control characters, so a value cannot forge a
line. A bad file never kills the sidecar (see reloads above). A cohort or watcher query runs in a READ
ONLY transaction that is rolled back, never committed, and one deadline (its statement_timeout) bounds
the whole read, enforced by the client, whatever the query sets. Sentry (SCHEDULER_SENTRY_DSN) gets
each failed tick, a database that cannot be reached (once per outage), a failing watcher (once per
distinct failure) and any unexpected error.
"""
EXAMPLES = """\
examples:
  scheduler run schedules/
  SCHEDULER_LOG_FORMAT=json SCHEDULER_HEALTH_PORT=8080 scheduler run schedules/
"""
_WATCH_EVERY_SECONDS = 1.0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "run",
        help=HELP,
        description=DESCRIPTION,
        epilog=EXAMPLES + "\n" + settings_help(),
        formatter_class=HelpFormatter,
    )
    add_paths(p)
    p.set_defaults(handler=run)


def _unset_dsn(paths: list[Path], environ: Mapping[str, str]) -> str | None:
    """Why `run` cannot start when a database it needs has no DSN in the environment (the ledger's, or one
    that an enabled schedule's cohort or a watcher reads): the variable and how to set it, else None. The
    environment cannot change under a running process, so this is refused at start rather than failing every
    tick. Invalid files give None: the service's load reports them, each finding at its place."""
    try:
        config = load_config(paths).config
        needed = set(ledger_databases(config))
    except Exception:  # the service loads again and logs each finding, or the failure, its own way
        return None
    needed |= {s.cohort.database for s in config.schedules.values() if s.enabled and s.cohort.sql is not None}
    needed |= {w.database for w in config.watchers.values() if w.sql is not None}
    unset: list[str] = []
    for database in sorted(needed):
        try:
            resolve_dsn(config, database, environ)
        except ConfigError as exc:
            unset.append(oneline(exc))
    if not unset:
        return None
    return unset[0] + (f" ({len(unset) - 1} more database(s) without a DSN)" if len(unset) > 1 else "")


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings()
    except ValidationError as exc:
        shown = Redactor.from_environ().text(str(exc))  # pydantic quotes the values it refused
        print(f"invalid settings (SCHEDULER_* environment variables):\n{shown}", file=sys.stderr)
        return EXIT_USAGE
    environ = Environ(os.environ)
    # One redactor for the logs, Sentry and the service (which teaches it each configuration's DSNs).
    redactor = Redactor.from_environ(environ)
    logger = configure(settings.log_format, getattr(logging, settings.log_level.upper()), redactor=redactor)
    paths: list[Path] = list(args.paths) or list(settings.config) or [Path(p) for p in DEFAULT_PATHS]
    init_sentry(settings, redactor=redactor)
    metrics = Metrics()
    clock = Clock(settings.test_clock_speed, settings.test_clock_anchor)
    unset = _unset_dsn(paths, os.environ)
    if unset is not None:
        # A mistake of the environment, not of the files: one line that names the variable, before anything
        # is loaded or migrated (the files' own findings are the service's to log, below).
        event(logger, logging.ERROR, "run_aborted", reason=unset)
        return EXIT_FINDINGS
    service = Service(
        settings, paths, logger=logger, metrics=metrics, clock=clock, environ=environ, redactor=redactor
    )
    checks = CachedCheck(service.database_checks, settings.readiness_interval.total_seconds(), logger)
    try:
        # Bound first (it serves once started below): a port in use stops the start before any ledger work.
        health = HealthServer(
            settings.health_host,
            settings.health_port,
            lambda: service.readiness(checks.latest()),
            metrics,
            logger,
        )
    except OSError as exc:
        event(logger, logging.ERROR, "run_aborted", reason=oneline(exc))
        return EXIT_FINDINGS
    if not service.load():
        health.stop()
        event(logger, logging.ERROR, "run_aborted", reason="the schedule files are invalid")
        return EXIT_FINDINGS
    checks.start()
    health.start()
    stop = threading.Event()
    reload = threading.Event()

    def on_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    def on_hup(signum: int, frame: FrameType | None) -> None:
        reload.set()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_hup)
    service.start()
    event(
        logger,
        logging.INFO,
        "run_started",
        replica=settings.replica_id,
        health_port=health.port,
        ledger_schema=settings.ledger_schema,
    )
    files = service.watched_files()
    while not stop.wait(_WATCH_EVERY_SECONDS):
        current = service.watched_files()
        if reload.is_set() or current != files:
            why = "sighup" if reload.is_set() else "files_changed"
            reload.clear()
            event(logger, logging.INFO, "config_reloading", why=why)
            service.load()
            files = service.watched_files()
    event(logger, logging.INFO, "run_stopping", grace_seconds=settings.grace_period.total_seconds())
    drained = service.stop(settings.grace_period)
    health.stop()
    checks.stop()
    sentry_sdk.flush(timeout=5)
    if not drained:
        event(logger, logging.ERROR, "run_stopped", drained=False)
        for handler in logger.handlers:
            handler.flush()
        # The tick in flight is abandoned: its transaction never commits (the connection dies with us),
        # and another replica or the next start fans it out. Worker threads must not keep us alive.
        os._exit(EXIT_FINDINGS)
    event(logger, logging.INFO, "run_stopped", drained=True)
    return EXIT_OK
