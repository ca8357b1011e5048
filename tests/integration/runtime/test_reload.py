"""Reloads that fail, in process on a real PostgreSQL: the running configuration stays, whatever breaks, and
`/readyz`'s verdict and the replica record that `scheduler status` reads say so."""

from __future__ import annotations

import io
import json
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from scheduler.cli import main
from scheduler.observe.log import configure
from scheduler.observe.metrics import Metrics
from scheduler.runtime.service import Service
from scheduler.runtime.settings import Settings
from tests.integration.runtime.test_service import STATIC, T0, YAML, FixedClock

if TYPE_CHECKING:
    from pathlib import Path

    from scheduler.fanout import Fanout

GOOD = YAML.format(cohort=STATIC)
TWO = GOOD + GOOD[GOOD.index("  hourly:") :].replace("  hourly:", "  other:", 1)

BROKEN: dict[str, str] = {
    "invalid value": GOOD.replace('"0 * * * *"', '"0 * * *"'),
    "malformed yaml": GOOD.replace("queues:", "queues: [", 1),
    "calendar-invalid date": GOOD.replace("schedules:\n", "schedules:\n  when: 2026-02-30\n", 1),
    "nul byte": GOOD.replace("version: 1\n", "version: 1\n\0\n", 1),
    "unknown tag": GOOD.replace("version: 1", "version: !!python/name:os.system 1", 1),
    "emptied file": "",
    "no schedule left": GOOD[: GOOD.index("schedules:")] + "schedules: {}\n",
    "every schedule disabled": GOOD.replace("    queue: work\n", "    queue: work\n    enabled: false\n"),
}


def _service(
    tmp_path: Path, queue_dsn: str, text: str = GOOD, cls: type[Service] = Service, **settings: Any
) -> tuple[Service, io.StringIO, Path]:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    out = io.StringIO()
    svc = cls(
        Settings(replica_id="r1", **settings),
        [path],
        logger=configure("json", logging.DEBUG, out),
        metrics=Metrics(send_to_sentry=False),
        clock=FixedClock(T0),
        environ={"QUEUE_URL": queue_dsn},
    )
    return svc, out, path


def _events(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_a_failed_reload_keeps_the_running_config_and_says_so(
    tmp_path: Path, queue_dsn: str, kind: str
) -> None:
    """Each kind of broken file: load() returns False without raising, the old state runs on, each finding
    is logged at error level with the file, and /readyz's config check names the failure (still ready)."""
    svc, out, path = _service(tmp_path, queue_dsn)
    assert svc.load()
    before = svc.state
    path.write_text(BROKEN[kind])
    assert not svc.load()
    assert svc.state is before
    failed = [e for e in _events(out) if e["event"] == "config_invalid"]
    assert failed
    assert all(e["level"] == "error" for e in failed)
    assert str(path) in failed[0]["finding"]
    assert [e["event"] for e in _events(out)][-1] == "config_kept"
    ready, checks = svc.readiness({"queue": "ok"})
    assert ready
    assert checks["config"].startswith("reload failed at ")
    assert failed[0]["finding"] in checks["config"]
    path.write_text(GOOD)
    assert svc.load()
    assert svc.readiness({"queue": "ok"}) == (True, {"config": "loaded", "queue": "ok"})


def test_a_config_that_stops_every_schedule_is_refused_unless_allowed(tmp_path: Path, queue_dsn: str) -> None:
    """Emptying the file is refused with a finding that names the setting; with it set, the reload runs;
    removing one schedule of two is an ordinary reload."""
    svc, out, path = _service(tmp_path, queue_dsn, TWO)
    assert svc.load()
    path.write_text(GOOD)
    assert svc.load()
    path.write_text("")
    assert not svc.load()
    assert "SCHEDULER_ALLOW_EMPTY_RELOAD=true" in _events(out)[-2]["finding"]
    allowed, _, path = _service(tmp_path, queue_dsn, GOOD, allow_empty_reload=True)
    assert allowed.load()
    path.write_text("")
    assert allowed.load()
    assert allowed.state is not None
    assert allowed.state.loaded.config.schedules == {}


class _ExplodingFanout(Service):
    """A service whose fan-out cannot be built once it runs (a bug in a later step of a load)."""

    def _build_fanout(self, loaded: Any) -> Fanout:
        if self.state is not None:
            raise RuntimeError("boom in the fan-out")
        return super()._build_fanout(loaded)


class _FailingReschedule(Service):
    """A service whose scheduler refuses the second configuration's jobs."""

    def _reschedule(self) -> None:
        state = self.state
        assert state is not None
        if "other" in state.loaded.config.schedules:
            raise RuntimeError("boom in the scheduler")
        super()._reschedule()


def test_an_unexpected_error_in_a_later_step_keeps_the_running_config(tmp_path: Path, queue_dsn: str) -> None:
    """Any exception after parsing is a failed reload: a finding naming the files and the error type, and a
    debug line saying where it was raised (no traceback in the log)."""
    svc, out, path = _service(tmp_path, queue_dsn, cls=_ExplodingFanout)
    assert svc.load()
    before = svc.state
    path.write_text(TWO)
    assert not svc.load()
    assert svc.state is before
    failed = next(e for e in _events(out) if e["event"] == "config_invalid")
    assert failed["finding"] == f"{path}: error: could not load: RuntimeError: boom in the fan-out"
    error = next(e for e in _events(out) if e["event"] == "config_load_error")
    assert (error["level"], error["error"]) == ("debug", "RuntimeError")
    assert error["raised_at"].endswith(" _build_fanout")
    assert "exc" not in error


def test_a_reschedule_that_fails_puts_the_old_jobs_back(tmp_path: Path, queue_dsn: str) -> None:
    """When the scheduler refuses the new jobs, the old configuration and its jobs are back in place."""
    svc, _, path = _service(tmp_path, queue_dsn, cls=_FailingReschedule, catch_up_poll=timedelta(hours=1))
    assert svc.load()
    before = svc.state
    svc.start()
    try:
        path.write_text(TWO)
        assert not svc.load()
        assert svc.state is before
        assert sorted(j.id for j in svc._scheduler.get_jobs()) == ["catch-up-poll", "schedule:hourly"]
    finally:
        svc.stop(timedelta(seconds=5))


def test_status_shows_the_failed_reload_of_a_live_replica(
    tmp_path: Path, queue_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The replica record (written by each catch-up poll) carries the failure; `status` shows it and exits 1,
    and once a reload succeeds the record is clean again and `status` exits 0."""
    svc, _, path = _service(tmp_path, queue_dsn)
    assert svc.load()
    good = tmp_path / "good" / "s.yaml"
    good.parent.mkdir()
    good.write_text(GOOD)
    monkeypatch.setenv("QUEUE_URL", queue_dsn)
    path.write_text(BROKEN["nul byte"])
    assert not svc.load()
    svc.record_replica()
    assert main(["status", "--json", str(good)]) == 1
    [replica] = json.loads(capsys.readouterr().out)["hourly"]["replicas"]
    assert replica["replica"] == "r1"
    assert replica["runs_schedule"] is True
    assert replica["reload_failed_at"] is not None
    assert str(path) in replica["reload_error"]
    assert main(["status", str(good)]) == 1
    text = capsys.readouterr().out
    assert "r1" in text
    assert "RELOAD FAILED at " in text
    path.write_text(GOOD)
    assert svc.load()
    svc.record_replica()
    assert main(["status", "--json", str(good)]) == 0
    [replica] = json.loads(capsys.readouterr().out)["hourly"]["replicas"]
    assert (replica["reload_failed_at"], replica["reload_error"]) == (None, None)
