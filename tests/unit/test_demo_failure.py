"""The one line `scheduler demo` prints when its embedded PostgreSQL does not start."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

from scheduler.demo import _failure

DATA = Path("/srv/demo")
PGDATA = DATA / "pgdata"
FIX = (
    "; run `scheduler demo --data-dir /srv/demo` again (it clears what a failed start leaves), or pass "
    "--data-dir with a new directory"
)


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("pgserver", logging.ERROR, __file__, 1, message, None, None)


def _failed(cmd: str) -> subprocess.CalledProcessError:
    return subprocess.CalledProcessError(1, [f"/x/pginstall/bin/{cmd}", "-D", str(PGDATA)])


def test_the_cause_is_initdbs_first_error_not_its_cleanup() -> None:
    dump = (
        "Failed postgres command (1, [...]) with kwargs: `{}`:\nerror:\nCommand '[...]' returned non-zero.\n"
        "stdout:\nrunning bootstrap script ... \n---\nstderr:\n"
        "child process was terminated by signal 9: Killed\ninitdb: removing contents of data directory\n"
        "initdb: error: failed to remove contents of data directory\n---\n"
    )
    line = _failure(_failed("initdb"), [_record(dump)], DATA, PGDATA)
    assert (
        line == f"PostgreSQL did not start in {PGDATA}: child process was terminated by signal 9: Killed{FIX}"
    )


def test_a_server_log_fatal_line_is_the_cause() -> None:
    dump = "Failed to start server.\nShowing contents of postgres server log below:\n2026-01-01 FATAL:  could not create lock file\n"
    line = _failure(_failed("pg_ctl"), [_record(dump)], DATA, PGDATA)
    assert line == f"PostgreSQL did not start in {PGDATA}: 2026-01-01 FATAL:  could not create lock file{FIX}"


def test_pgservers_own_error_while_reporting_does_not_hide_a_timeout() -> None:
    """pgserver reads the server log after a pg_ctl timeout; a missing log raises FileNotFoundError
    from inside that handler, with the timeout as its context."""
    try:
        try:
            raise subprocess.TimeoutExpired(["/x/pginstall/bin/pg_ctl", "start"], 10)
        except subprocess.TimeoutExpired:
            (PGDATA / "log").read_text()
    except FileNotFoundError as exc:
        line = _failure(exc, [], DATA, PGDATA)
    assert line == f"PostgreSQL did not start in {PGDATA}: pg_ctl did not finish within 10 s{FIX}"


def test_without_output_the_command_and_its_exit_code() -> None:
    assert _failure(_failed("initdb"), [], DATA, PGDATA) == (
        f"PostgreSQL did not start in {PGDATA}: initdb exited with 1{FIX}"
    )


def test_an_interrupt_says_so() -> None:
    assert (
        _failure(KeyboardInterrupt(), [], DATA, PGDATA)
        == f"PostgreSQL did not start in {PGDATA}: interrupted{FIX}"
    )
