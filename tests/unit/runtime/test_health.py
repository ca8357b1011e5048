"""The health server under load: /readyz answers from one cached check, and clients that hang up are quiet."""

from __future__ import annotations

import http.client
import io
import json
import logging
import socket
import struct
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from scheduler.observe.log import configure
from scheduler.observe.metrics import Metrics
from scheduler.runtime.health import CachedCheck, HealthServer

HOUR = 3600.0
"""An interval no test outlives: any second check would be one a request caused."""


class Counting:
    """A readiness check that counts its calls (thread-safe)."""

    def __init__(self) -> None:
        self.calls = 0
        self.first = threading.Event()
        self._lock = threading.Lock()

    def __call__(self) -> dict[str, str]:
        with self._lock:
            self.calls += 1
        self.first.set()
        return {"queue": "ok"}


def _server(readiness: Any, log: io.StringIO) -> HealthServer:
    server = HealthServer(
        "127.0.0.1", 0, readiness, Metrics(send_to_sentry=False), configure("json", logging.DEBUG, log)
    )
    server.start()
    return server


def _get(port: int, path: str) -> tuple[int, dict[str, Any]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
        return resp.status, json.loads(resp.read())


def test_concurrent_readyz_requests_run_one_database_check_per_interval() -> None:
    """400 /readyz requests from 20 threads at once: the check ran once (at start), every answer is its result."""
    check = Counting()
    cache = CachedCheck(check, HOUR, configure("json", logging.DEBUG, io.StringIO()))
    cache.start()
    assert check.first.wait(10)
    server = _server(lambda: (cache.latest() == {"queue": "ok"}, {"db": cache.latest()}), io.StringIO())
    try:
        with ThreadPoolExecutor(max_workers=20) as pool:
            answers = list(pool.map(lambda _: _get(server.port, "/readyz"), range(400)))
    finally:
        server.stop()
        cache.stop()
    assert answers == [(200, {"ready": True, "checks": {"db": {"queue": "ok"}}})] * 400
    assert check.calls == 1


def test_no_result_before_the_first_check_and_stale_results_say_so() -> None:
    """Before the first check finished there is no verdict; a result older than `stale_after` is marked."""
    check = Counting()
    log = io.StringIO()
    assert CachedCheck(check, HOUR, configure("json", logging.DEBUG, log)).latest() is None
    stale = CachedCheck(check, HOUR, configure("json", logging.DEBUG, log), stale_after=0)
    stale.refresh()
    latest = stale.latest()
    assert latest is not None
    assert latest["queue"] == "ok"
    assert "checks are late" in latest["readiness"]
    assert check.calls == 1


def test_a_check_that_raises_is_an_unready_verdict() -> None:
    """An exception in the check becomes a verdict naming its type; the thread lives on."""

    def broken() -> dict[str, str]:
        raise RuntimeError("postgresql://user:secret@host/db")

    log = io.StringIO()
    cache = CachedCheck(broken, HOUR, configure("json", logging.DEBUG, log))
    cache.refresh()
    assert cache.latest() == {"readiness": "check failed: RuntimeError"}
    assert "secret" not in log.getvalue()


def _reset(sock: socket.socket) -> None:
    """Close with an RST (linger 0), the way a probe that timed out or a killed client goes away."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _wait_for(log: io.StringIO, text: str) -> None:
    for _ in range(200):
        if text in log.getvalue():
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never logged; log:\n{log.getvalue()}")


def _levels(log: io.StringIO) -> set[str]:
    return {json.loads(line)["level"] for line in log.getvalue().splitlines()}


def test_client_gone_before_the_answer_is_one_debug_line(capfd: pytest.CaptureFixture[str]) -> None:
    """A client that resets the connection while /readyz is being computed: the write fails, and all that
    shows is a debug line in the log; nothing on stderr, and the server keeps serving."""
    entered, released = threading.Event(), threading.Event()

    def slow() -> tuple[bool, dict[str, Any]]:
        entered.set()
        released.wait(10)
        return True, {"queue": "ok"}

    log = io.StringIO()
    server = _server(slow, log)
    try:
        client = socket.create_connection(("127.0.0.1", server.port))
        client.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert entered.wait(10)
        _reset(client)
        released.set()
        _wait_for(log, "health_client_gone")
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz", timeout=10) as resp:
            assert resp.read() == b"ok\n"
    finally:
        server.stop()
    assert capfd.readouterr().err == ""
    assert _levels(log) == {"debug"}


def test_client_gone_mid_request_is_one_debug_line(capfd: pytest.CaptureFixture[str]) -> None:
    """A client that sends half a request line and resets: nothing on stderr, a debug line at most."""
    log = io.StringIO()
    server = _server(lambda: (True, {}), log)
    try:
        client = socket.create_connection(("127.0.0.1", server.port))
        client.sendall(b"GET /rea")
        _reset(client)
        for _ in range(3):  # later clients are served (and the reset one has been handled by then)
            with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz", timeout=10) as resp:
                assert resp.status == 200
    finally:
        server.stop()
    assert capfd.readouterr().err == ""
    assert _levels(log) <= {"debug"}


def test_a_bug_in_a_handler_is_one_error_line(capfd: pytest.CaptureFixture[str]) -> None:
    """An exception while answering (not a disconnect) is one structured error line, no traceback on
    stderr, and the server keeps serving."""

    def broken() -> tuple[bool, dict[str, Any]]:
        raise RuntimeError("a bug")

    log = io.StringIO()
    server = _server(broken, log)
    try:
        with pytest.raises(http.client.RemoteDisconnected):
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/readyz", timeout=10)
        _wait_for(log, "health_request_failed")
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz", timeout=10) as resp:
            assert resp.status == 200
    finally:
        server.stop()
    assert capfd.readouterr().err == ""
    [line] = [json.loads(line) for line in log.getvalue().splitlines()]
    assert (line["level"], line["event"], line["error"]) == ("error", "health_request_failed", "RuntimeError")
