"""`scheduler demo` as a new user runs it: no database configured, an embedded PostgreSQL from pgserver."""

from __future__ import annotations

import os
import re
import signal
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


def _environ(**extra: str) -> dict[str, str]:
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SCHEDULER_") and not k.endswith("_DATABASE_URL")
    }
    return {**environ, **extra}


def _demo(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = _environ(**env)
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


def _assert_recovered_and_cleaned_up(result: subprocess.CompletedProcess[str], data_dir: Path) -> str:
    """The demo ran to its end after one `recovered:` line, and left no server and no directory behind."""
    assert result.returncode == 0, result.stdout + result.stderr
    recovered = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("recovered:")]
    assert len(recovered) == 1, result.stdout
    assert "Traceback" not in result.stderr
    assert "queue insights: 13 planned -> 13 accepted, 0 dropped" in result.stdout
    assert _servers_in(data_dir) == []
    assert not data_dir.exists()
    return recovered[0]


def test_demo_recovers_a_half_initialized_data_directory(tmp_path: Path) -> None:
    """What an initdb killed mid-way leaves (PG_VERSION, no pg_control, the bootstrap backend's
    postmaster.pid naming a dead process), in the default directory of a demo that predates the mark:
    the next run says so in one line, clears it and runs to the end."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    data_dir = tmp_path / ".scheduler-demo"
    pgdata = data_dir / "pgdata"
    (pgdata / "base" / "1").mkdir(parents=True)
    (pgdata / "global").mkdir()
    (pgdata / "PG_VERSION").write_text("16\n")
    (pgdata / "postmaster.pid").write_text(f"-{dead.pid}\n{pgdata}\n1796000000\n")
    try:
        result = _demo(cwd=tmp_path)
    finally:
        for proc in _servers_in(data_dir):
            proc.kill()
    line = _assert_recovered_and_cleaned_up(result, data_dir)
    assert f"{pgdata} held a half-initialized data directory from an interrupted run" in line


def test_demo_recovers_from_a_run_killed_while_its_server_ran(tmp_path: Path) -> None:
    """A demo SIGKILLed once its server is up leaves that server running (and its own pid among pgserver's
    handles): the next run reuses the server, runs to the end and stops it."""
    data_dir = tmp_path / "demo-data"
    first = subprocess.Popen(
        [str(SCHEDULER), "demo", "--data-dir", str(data_dir)],
        cwd=tmp_path,
        env=_environ(PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert first.stdout is not None
        for line in first.stdout:
            if line.startswith("== 2."):
                break
        first.send_signal(signal.SIGKILL)
        first.wait(DEMO_TIMEOUT_SECONDS)
        first.stdout.close()
        assert _servers_in(data_dir) != []  # the interrupted run's server is still up
        result = _demo("--data-dir", str(data_dir), cwd=tmp_path)
    finally:
        first.kill()
        for proc in _servers_in(data_dir):
            proc.kill()
    line = _assert_recovered_and_cleaned_up(result, data_dir)
    assert re.fullmatch(
        rf"recovered: reusing the PostgreSQL an earlier run left running in {re.escape(str(data_dir))}/pgdata \(pid \d+\)",
        line,
    )


def test_demo_refuses_a_directory_it_did_not_write(tmp_path: Path) -> None:
    """--data-dir naming someone's directory: one line naming the fix, exit 1, nothing written or removed."""
    data_dir = tmp_path / "project"
    (data_dir / "schedules").mkdir(parents=True)
    (data_dir / "schedules" / "billing.yaml").write_text("version: 1\n")
    (data_dir / "notes.txt").write_text("mine\n")
    result = _demo("--data-dir", str(data_dir), cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        f"scheduler demo: {data_dir} is not a scheduler demo directory (it holds notes.txt, which the demo "
        "did not write): pass --data-dir with a new or empty directory (default ./.scheduler-demo)"
    ]
    assert sorted(p.name for p in data_dir.rglob("*")) == ["billing.yaml", "notes.txt", "schedules"]


def test_a_postgresql_that_cannot_start_is_one_line_with_the_fix(tmp_path: Path) -> None:
    """initdb failing (here: a locale that does not exist) prints initdb's own error in one line, not
    pgserver's dump of every command output; the next run, in a sane environment, recovers."""
    data_dir = tmp_path / "demo-data"
    result = _demo("--data-dir", str(data_dir), cwd=tmp_path, LC_ALL="xx_YY.bogus", LANG="xx_YY.bogus")
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        f"scheduler demo: PostgreSQL did not start in {data_dir}/pgdata: initdb: error: invalid locale "
        "settings; check LANG and LC_* environment variables; run `scheduler demo --data-dir "
        f"{data_dir}` again (it clears what a failed start leaves), or pass --data-dir with a new directory"
    ]


def test_demo_does_not_follow_a_pgdata_symlink(tmp_path: Path) -> None:
    """A demo directory whose pgdata is a link (say, to a real cluster): refused in one line, the link's
    target untouched."""
    target = tmp_path / "real-cluster"
    target.mkdir()
    (target / "PG_VERSION").write_text("16\n")
    data_dir = tmp_path / "demo-data"
    data_dir.mkdir()
    (data_dir / "scheduler-demo.txt").write_text("")
    (data_dir / "pgdata").symlink_to(target)
    result = _demo("--data-dir", str(data_dir), cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        f"scheduler demo: {data_dir}/pgdata is not a directory the demo wrote: remove it or pass --data-dir "
        "with a new or empty directory"
    ]
    assert sorted(p.name for p in target.iterdir()) == ["PG_VERSION"]
