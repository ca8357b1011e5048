"""The health and metrics HTTP server: `/healthz` (the process is alive), `/readyz` (config loaded,
databases reachable, ledger migrated; 503 otherwise, with the reason per database) and `/metrics`
(Prometheus text from the in-process registry). Standard library only; one thread per request.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from scheduler.observe.metrics import render_prometheus

if TYPE_CHECKING:
    from scheduler.observe.metrics import Metrics

Readiness = Callable[[], tuple[bool, dict[str, Any]]]


class HealthServer:
    """Serves the three endpoints on `host:port` (port 0: a free one, see `.port`) from a daemon thread."""

    def __init__(self, host: str, port: int, readiness: Readiness, metrics: Metrics) -> None:
        handler = _handler(readiness, metrics)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="health", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler(readiness: Readiness, metrics: Metrics) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
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
            """Probes every few seconds would drown the event log: stay quiet."""

    return Handler
