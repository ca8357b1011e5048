"""`scheduler demo` as a new user runs it: no database configured, an embedded PostgreSQL from pgserver."""

from __future__ import annotations

import os
import re
import subprocess
from typing import TYPE_CHECKING

import psutil

from tests.acceptance.cli import SCHEDULER

if TYPE_CHECKING:
    from pathlib import Path

DEMO_TIMEOUT_SECONDS = 25


def _servers_in(data_dir: Path) -> list[psutil.Process]:
    """PostgreSQL processes whose command line names `data_dir`."""
    found = []
    for proc in psutil.process_iter(attrs=["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and any(str(data_dir) in part for part in cmdline):
            found.append(proc)
    return found


def _demo(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SCHEDULER_") and not k.endswith("_DATABASE_URL")
    }
    return subprocess.run(
        [str(SCHEDULER), "demo", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_SECONDS,
        check=False,
    )


def test_demo_shows_the_seed_incident_and_its_fix_then_cleans_up(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo-data"
    try:
        result = _demo("--data-dir", str(data_dir), cwd=tmp_path)
    finally:
        leftover = _servers_in(data_dir)
        for proc in leftover:
            proc.kill()
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout

    # The dry-run of 14:00 predicts the drop before anything is written.
    assert re.search(r"\$ scheduler dry-run --hour 14 --date \d{4}-\d\d-\d\d", out)
    assert "insight-digest-unkeyed  (" in out
    assert "queue insights: 13 planned -> 1 accepted, 12 dropped (duplicate_in_cohort 12)" in out
    assert "queue insights: 13 planned -> 13 accepted, 0 dropped" in out
    assert "queue billing: 200 planned -> 200 accepted, 0 dropped" in out

    # The seed incident fired: 1 enqueued, 12 dropped, each naming the job that holds the lock.
    incident = out.split("$ scheduler fire insight-digest-unkeyed", 1)[1].split("== 5.", 1)[0]
    assert "insights (procrastinate): 13 planned, 1 enqueued, 12 dropped (duplicate_in_cohort 12)" in incident
    holders = re.findall(r"dropped org-\d{4}: duplicate_in_cohort, held by job (\d+)\n", incident)
    assert len(holders) == 12
    assert len(set(holders)) == 1

    # The fixed version and the rollup: everything accepted, one queue connection each.
    fixed = out.split("$ scheduler fire insight-digest ", 1)[1].split("== 6.", 1)[0]
    assert "insights (procrastinate): 13 planned, 13 enqueued, 0 dropped" in fixed
    assert "billing (procrastinate): 200 planned, 200 enqueued, 0 dropped" in out
    assert out.count("1 queue connection(s)") == 3
    assert re.search(r"billing +todo +200\n +insights +todo +14\n", out)
    assert "fanout_dropped schedule=insight-digest-unkeyed" in result.stderr

    # Next steps, then the cleanup: no server left, the data directory removed.
    next_steps = out.split("== Next steps", 1)[1]
    for line in ("APP_DATABASE_URL", "QUEUE_DATABASE_URL", "scheduler validate --check-db", "scheduler run"):
        assert line in next_steps
    assert "scheduler dry-run --hour 14 schedules/" in next_steps
    assert leftover == []
    assert not data_dir.exists()


def test_demo_without_pgserver_names_the_install_command(tmp_path: Path) -> None:
    """A Python where pgserver cannot be imported (blocked the documented way: `sys.modules[name] = None`)
    gets exit 1 and the install command, and nothing is written."""
    code = (
        "import sys; sys.modules['pgserver'] = None; from scheduler.cli import main; sys.exit(main(['demo']))"
    )
    result = subprocess.run(
        [str(SCHEDULER.parent / "python"), "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "needs pgserver" in result.stderr
    assert "pip install 'pg-fanout-scheduler[demo]'" in result.stderr
    assert "pip install -e '.[demo]'" in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / ".scheduler-demo").exists()
