"""`scheduler bench-pool` without a database: arguments, the DSN lookup, the table and its summary."""

from __future__ import annotations

import io

import pytest

import scheduler.commands.benchpool as command
from scheduler.benchpool import BenchConfig, BenchReport, RoundResult, format_table
from scheduler.cli import main
from scheduler.types import BackendKind


def test_without_a_dsn_the_error_names_both_sources(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("QUEUE_DATABASE_URL", raising=False)

    assert main(["bench-pool"]) == 2
    err = capsys.readouterr().err
    assert "--dsn" in err
    assert "$QUEUE_DATABASE_URL" in err


def test_arguments_reach_the_harness(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The DSN comes from $QUEUE_DATABASE_URL; durations and pool lists are parsed."""
    seen: list[BenchConfig] = []

    def fake(config: BenchConfig, progress: object = None) -> BenchReport:
        seen.append(config)
        return BenchReport(config=config, queue="scheduler-bench-x", cleaned_up=True, leftover_jobs=0)

    monkeypatch.setattr(command, "run_bench", fake)
    monkeypatch.setenv("QUEUE_DATABASE_URL", "postgresql://env/db")

    argv = ["bench-pool", "--burst", "50", "--pool", "3, 7", "--acquire-timeout", "500ms", "--work-ms", "20"]
    assert main([*argv, "--backend", "procrastinate", "--json"]) == 0
    assert seen == [
        BenchConfig(
            dsn="postgresql://env/db",
            backend=BackendKind.PROCRASTINATE,
            burst=50,
            pools=(3, 7),
            acquire_timeout=0.5,
            work_ms=20,
        )
    ]
    assert '"scratch_queue": "scheduler-bench-x"' in capsys.readouterr().out


def test_defaults_match_the_incident(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[BenchConfig] = []
    monkeypatch.setattr(
        command, "run_bench", lambda config, progress=None: seen.append(config) or BenchReport(config, "q")
    )
    assert main(["bench-pool", "--dsn", "postgresql://x/y", "--quiet"]) == 0
    assert (seen[0].burst, seen[0].pools, seen[0].acquire_timeout, seen[0].work_ms) == (
        200,
        (5, 10, 15),
        2.0,
        0,
    )
    assert seen[0].backend is BackendKind.PGBOSS


@pytest.mark.parametrize(
    "argv",
    [
        ["--pool", "5,x"],
        ["--pool", ","],
        ["--pool", "0"],
        ["--burst", "0"],
        ["--acquire-timeout", "soon"],
        ["--acquire-timeout", "0s"],
        ["--work-ms", "-1"],
        ["--backend", "celery"],
    ],
)
def test_bad_arguments_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["bench-pool", "--dsn", "postgresql://x/y", *argv])
    assert exit_.value.code == 2
    assert "bench-pool" in capsys.readouterr().err


def test_help_explains_work_ms_and_shows_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["bench-pool", "--help"])
    out = capsys.readouterr().out
    assert "scheduler bench-pool --burst 200 --pool 5,10,15" in out
    assert "round trip" in out
    assert "QUEUE_DATABASE_URL" in out


def test_table_shows_every_round_side_by_side_and_the_summary() -> None:
    config = BenchConfig(dsn="x", backend=BackendKind.PGBOSS, burst=200, pools=(5, 10), acquire_timeout=2.0)
    report = BenchReport(
        config=config,
        queue="scheduler-bench-abc",
        rounds=[
            RoundResult(
                "pool", 5, 200, ok=144, timeouts=56, wall_ms=2100.4, peak_in_use=5, connections_used=5
            ),
            RoundResult("pool", 10, 200, ok=200, wall_ms=900.0, peak_in_use=10, connections_used=10),
            RoundResult("bulk", None, 200, ok=200, wall_ms=12.0, peak_in_use=1, connections_used=1),
        ],
        cleaned_up=True,
        leftover_jobs=0,
    )
    out = io.StringIO()
    format_table(report, out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("burst of 200 jobs, pgboss, acquire timeout 2 s")
    assert lines[1].split() == [
        "ok",
        "timeouts",
        "errors",
        "wall",
        "ms",
        "peak",
        "in",
        "use",
        "backends",
        "server",
        "conns",
    ]
    assert lines[2].split() == ["pool", "5", "144", "56", "0", "2100", "5", "5", "0"]
    assert lines[4].split()[:4] == ["bulk", "(1", "conn)", "200"]
    summary = lines[-1]
    assert "56 at pool 5" in summary
    assert "No timeout or error at pool 10." in summary
    assert "200 of 200 on 1 connection(s)" in summary
    assert "WARNING" not in summary


def test_summary_warns_when_the_scratch_queue_was_left_behind() -> None:
    config = BenchConfig(dsn="x", backend=BackendKind.PGBOSS, burst=1, pools=(1,), acquire_timeout=1.0)
    report = BenchReport(config=config, queue="scheduler-bench-abc", cleaned_up=False, leftover_jobs=3)
    out = io.StringIO()
    format_table(report, out)
    assert (
        "WARNING: scratch queue scheduler-bench-abc was not fully removed (3 job(s) left)" in out.getvalue()
    )
