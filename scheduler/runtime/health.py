"""The health and metrics HTTP server: `/healthz` (the process is alive), `/readyz` (config loaded,
databases reachable, ledger migrated; 503 otherwise, with the reason per database) and `/metrics`
(Prometheus text from the in-process registry). Standard library only; one thread per request.

Requests never touch a database: `/readyz` answers from the latest result of a `CachedCheck`, which runs
the database checks in one background thread at most once per interval, so a thousand probes a second cost
what one costs. A client that hangs up early is no error of ours: it costs a debug line, never a traceback
on stderr (where it would break a JSON log stream).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import sentry_sdk

from scheduler.observe.log import event
from scheduler.observe.metrics import render_prometheus

if TYPE_CHECKING:
    from socketserver import BaseServer

    from scheduler.observe.metrics import Metrics

Readiness = Callable[[], tuple[bool, dict[str, Any]]]
_REQUEST_TIMEOUT_SECONDS = 10.0
"""A client that sends nothing for this long is dropped (a stalled probe must not hold a thread forever)."""
_DISCONNECTS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)


class CachedCheck:
    """Runs `check` in one background thread: at once, then every `interval` seconds after the previous run
    ended. `latest()` returns the last result without waiting (None before the first one finished; a result
    marked stale once it is older than `stale_after`, e.g. while a check hangs on a dead host).
    """

    def __init__(
        self,
        check: Callable[[], Mapping[str, str]],
        interval: float,
        logger: logging.Logger,
        *,
        stale_after: float | None = None,
    ) -> None:
        self._check = check
        self.interval = interval
        self.stale_after = stale_after if stale_after is not None else max(3 * interval, interval + 30)
        self._logger = logger
        self._lock = threading.Lock()
        self._result: dict[str, str] | None = None
        self._at = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="readiness", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def latest(self) -> dict[str, str] | None:
        with self._lock:
            result, at = self._result, self._at
        if result is None:
            return None
        age = time.monotonic() - at
        if age > self.stale_after:
            return {**result, "readiness": f"the last database check is {age:.0f}s old (checks are late)"}
        return dict(result)

    def refresh(self) -> None:
        """Run the check once now, in the calling thread (the loop calls this)."""
        try:
            result = dict(self._check())
        except Exception as exc:  # a failing check is an unready verdict, not a dead thread
            event(self._logger, logging.WARNING, "readiness_check_failed", error=type(exc).__name__)
            result = {"readiness": f"check failed: {type(exc).__name__}"}
        with self._lock:
            self._result, self._at = result, time.monotonic()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.refresh()
            self._stop.wait(self.interval)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    logger: logging.Logger

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Instead of socketserver's traceback on stderr: a client gone is a debug line; anything else (a bug)
        one error line, and the exception goes to Sentry. The server keeps serving either way."""
        exc = sys.exc_info()[1]
        if isinstance(exc, _DISCONNECTS):
            event(self.logger, logging.DEBUG, "health_client_gone", error=type(exc).__name__)
            return
        event(self.logger, logging.ERROR, "health_request_failed", error=type(exc).__name__)
        sentry_sdk.capture_exception(exc)


class HealthServer:
    """Serves the three endpoints on `host:port` (port 0: a free one, see `.port`) from a daemon thread."""

    def __init__(
        self, host: str, port: int, readiness: Readiness, metrics: Metrics, logger: logging.Logger
    ) -> None:
        handler = _handler(readiness, metrics, logger)
        self._server = _Server((host, port), handler)
        self._server.logger = logger
        self._thread = threading.Thread(target=self._server.serve_forever, name="health", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        started = self._thread.is_alive()  # shutdown() would wait for a serve_forever that never started
        if started:
            self._server.shutdown()
        self._server.server_close()
        if started:
            self._thread.join(timeout=5)


def _handler(readiness: Readiness, metrics: Metrics, logger: logging.Logger) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = _REQUEST_TIMEOUT_SECONDS

        def __init__(self, request: Any, client_address: Any, server: BaseServer) -> None:
            try:
                super().__init__(request, client_address, server)
            except _DISCONNECTS as exc:  # the client hung up (or stalled) mid-request or mid-answer
                event(logger, logging.DEBUG, "health_client_gone", error=type(exc).__name__)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._send(200, "text/plain; charset=utf-8", "ok\n")
            elif path == "/readyz":
                ready, checks = readiness()
                body = json.dumps({"ready": ready, "checks": checks}, sort_keys=True) + "\n"
                self._send(200 if ready else 503, "application/json", body)
            elif path == "/metrics":
                self._send(200, "text/plain; version=0.0.4; charset=utf-8", render_prometheus(metrics))
            else:
                self._send(404, "text/plain; charset=utf-8", "not found: try /healthz, /readyz, /metrics\n")

        def _send(self, status: int, content_type: str, body: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            """Probes every few seconds would drown the event log: stay quiet (http.server's own complaints,
            such as a malformed request line, go through here too)."""

    return Handler
