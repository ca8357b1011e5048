"""`scheduler run` in a subprocess, sent SIGHUP with broken files of several kinds: it keeps firing on the
configuration it runs, and `/readyz` and `scheduler status` show the failed reload; bad files at start
exit 1 with findings, without a traceback."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from tests.acceptance.conftest import (
    REPO,
    WAIT_SECONDS,
    Replica,
    assert_each_tick_once,
    done_ticks,
    wait_until,
    write_config,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.acceptance.conftest import Launch


def _broken(good: str) -> dict[str, str]:
    """Broken versions of the acceptance schedule file, one per way a file goes wrong."""
    return {
        "malformed YAML": good.replace("queues:", "queues: [", 1),
        "calendar-invalid date": good.replace("schedules:\n", "schedules:\n  when: 2026-02-30\n", 1),
        "NUL byte": good.replace("version: 1\n", "version: 1\n\0\n", 1),
        "unknown tag": good.replace("version: 1", "version: !!python/object:os.system 1", 1),
        "invalid cron": good.replace('"* * * * *"', '"* * * *"'),
        "emptied file": "",
    }


def _readyz(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _count(replica: Replica, pattern: str) -> int:
    regex = re.compile(pattern)
    return sum(1 for line in replica.text().splitlines() if regex.search(line))


def _status(config: Path, queue_dsn: str) -> tuple[int, dict[str, Any]]:
    """`scheduler status --json` run as a command, as an operator would."""
    env = {**os.environ, "ACCEPTANCE_QUEUE_URL": queue_dsn}
    done = subprocess.run(
        [sys.executable, "-m", "scheduler.cli", "status", "--json", str(config)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, json.loads(done.stdout)


def _wait_more(count: Callable[[], int], than: int, what: str) -> None:
    """Wait until `count()` is more than `than`."""
    wait_until(lambda: count() > than, what=what)


def _status_failed(config: Path, queue_dsn: str) -> tuple[int, dict[str, Any]] | None:
    """`status`'s answer once it shows a failed reload for the (only) replica; else None."""
    code, doc = _status(config, queue_dsn)
    replicas = doc["every-minute"]["replicas"]
    return (code, doc) if replicas and replicas[0]["reload_failed_at"] else None


def test_sighup_with_broken_files_keeps_firing_on_the_old_config(
    tmp_path: Path, queue_dsn: str, launch: Launch
) -> None:
    """Six kinds of broken file, one SIGHUP each: after each, ticks go on being fanned out once each, /readyz
    stays 200 and says the reload failed, and `status` shows it for the replica; a good file clears it."""
    run_dir, status_dir = tmp_path / "run", tmp_path / "status"
    run_dir.mkdir()
    status_dir.mkdir()
    config = write_config(run_dir)
    good = config.read_text()
    status_config = write_config(status_dir)  # what the operator's checkout holds
    replica = launch(config, queue_dsn, time.time(), SCHEDULER_READINESS_INTERVAL="0.2s")
    port = int(replica.wait_for(r"run_started .*health_port=(\d+)").group(1))
    replica.wait_for(r"fanout_enqueued")
    for kind, text in _broken(good).items():
        kept = _count(replica, r"config_kept")
        config.write_text(text)
        replica.proc.send_signal(signal.SIGHUP)
        _wait_more(lambda: _count(replica, r"config_kept"), kept, f"config kept after {kind}")
        assert replica.proc.poll() is None, kind
        seen = len(done_ticks(queue_dsn))
        _wait_more(lambda: len(done_ticks(queue_dsn)), seen + 1, f"ticks after {kind}")
        status, body = _readyz(port)
        assert status == 200, (kind, body)
        assert body["checks"]["config"].startswith("reload failed at "), (kind, body)
        assert config.name in body["checks"]["config"], (kind, body)
        code, doc = wait_until(
            lambda: _status_failed(status_config, queue_dsn),
            what=f"status showing the failed reload after {kind}",
        )
        assert code == 1
        assert config.name in doc["every-minute"]["replicas"][0]["reload_error"], kind
    assert "Traceback" not in replica.text()
    invalid = [line for line in replica.text().splitlines() if " config_invalid " in line]
    assert len(invalid) >= len(_broken(good))
    assert all(line.split()[1] == "error" for line in invalid)

    loaded = _count(replica, r"config_loaded")
    config.write_text(good)
    replica.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: _count(replica, r"config_loaded") > loaded, what="the good config loaded")
    assert _readyz(port)[1]["checks"]["config"] == "loaded"
    wait_until(lambda: _status(status_config, queue_dsn)[0] == 0, what="status clean again")
    assert replica.stop() == 0
    assert_each_tick_once(queue_dsn)


def test_bad_files_at_start_exit_1_with_findings_and_no_traceback(
    tmp_path: Path, queue_dsn: str, launch: Launch
) -> None:
    """Each broken file at start: exit 1, its findings logged (config_invalid, naming the file), then
    run_aborted; never a traceback. An emptied file at start runs (there is nothing to keep), with a warning."""
    good = write_config(tmp_path).read_text()
    for kind, text in _broken(good).items():
        if kind == "emptied file":
            continue
        config = tmp_path / f"{kind.replace(' ', '-')}.yaml"
        config.write_text(text)
        replica = launch(config, queue_dsn, time.time())
        assert replica.proc.wait(timeout=WAIT_SECONDS) == 1, kind
        wait_until(lambda r=replica: "run_aborted" in r.text(), what=f"run_aborted after {kind}")
        logged = replica.text()
        assert "config_invalid finding=" in logged, kind
        assert config.name in logged, kind
        assert "Traceback" not in logged, kind
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    replica = launch(empty, queue_dsn, time.time())
    replica.wait_for(r"warning config_loaded .*schedules=\[\]")
    replica.wait_for(r"run_started")
    assert replica.stop() == 0
