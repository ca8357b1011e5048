"""`scheduler dry-run` on a spring-forward day: the tick a skipped local time moves is shown in the hour it
happens, as `run` fires it, and the skipped hour says where it went. Plan only (static cohorts, no database)."""

from __future__ import annotations

import json
import shlex
import shutil
from typing import TYPE_CHECKING

from tests.acceptance.cli import REPO_SCHEDULES, scheduler

if TYPE_CHECKING:
    from pathlib import Path

NEW_YORK = """\
version: 1
schedules:
  nightly-export:
    cron: "30 2 * * *"
    timezone: America/New_York
    cohort:
      static:
        - { key: acme }
    queue: rollups
"""


def dry_run_json(*args: str, cwd: Path) -> dict[str, object]:
    done = scheduler("dry-run", "--json", *args, cwd=cwd)
    assert done.returncode == 0, done.stderr
    doc: dict[str, object] = json.loads(done.stdout)
    return doc


def only_schedule(doc: dict[str, object]) -> dict[str, object]:
    schedules = doc["schedules"]
    assert isinstance(schedules, list)
    assert len(schedules) == 1
    entry: dict[str, object] = schedules[0]
    return entry


def tick_instants(entry: dict[str, object]) -> list[str]:
    ticks = entry["ticks"]
    assert isinstance(ticks, list)
    return [t["tick"] for t in ticks]


def test_help_example_shows_the_billing_rollup_of_the_spring_forward_day(tmp_path: Path) -> None:
    """The `dry-run --help` example, run as written: Berlin skips 02:15 on 2026-03-29, the rollup fires at
    03:00 CEST (01:00Z), and that is the hour the example asks for."""
    shown = scheduler("dry-run", "--help", cwd=tmp_path)
    example = next(line for line in shown.stdout.splitlines() if "billing-rollup" in line)
    argv = shlex.split(example)
    assert argv[:2] == ["scheduler", "dry-run"]
    args = [str(REPO_SCHEDULES) if a == "schedules/" else a for a in argv[2:] if a != "--json"]
    entry = only_schedule(dry_run_json(*args, cwd=tmp_path))
    assert tick_instants(entry) == ["2026-03-29T01:00:00+00:00"]


def test_the_skipped_hour_says_where_its_tick_went(tmp_path: Path) -> None:
    """--hour 2 on that day has no tick, and says that the hour does not happen and where to look."""
    args = ("--hour", "2", "--date", "2026-03-29", "--schedule", "billing-rollup", str(REPO_SCHEDULES))
    entry = only_schedule(dry_run_json(*args, cwd=tmp_path))
    assert tick_instants(entry) == []
    assert entry["note"] == (
        "02:00-03:00 does not happen on 2026-03-29 in Europe/Berlin (the clocks jump to 2026-03-29 03:00); "
        "a fixed-hour tick meant for it fires then: --hour 3 --date 2026-03-29"
    )
    text = scheduler("dry-run", *args, cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert "  no tick: 02:00-03:00 does not happen on 2026-03-29 in Europe/Berlin" in text.stdout


def test_new_york_spring_forward_tick_is_in_hour_3(tmp_path: Path) -> None:
    """The issue's case: `30 2 * * *` New York on 2026-03-08 fires at 03:00 EDT (07:00Z); --hour 3 shows it."""
    config = tmp_path / "schedules"
    config.mkdir()
    shutil.copy(REPO_SCHEDULES / "queues.yaml", config / "queues.yaml")
    (config / "export.yaml").write_text(NEW_YORK)
    entry = only_schedule(dry_run_json("--hour", "3", "--date", "2026-03-08", str(config), cwd=tmp_path))
    assert entry["window"] == ["2026-03-08T07:00:00+00:00", "2026-03-08T08:00:00+00:00"]
    assert tick_instants(entry) == ["2026-03-08T07:00:00+00:00"]
