"""Cost of `next_tick` and `ticks`, the calls the service's trigger and `dry-run` make.

    .venv/bin/python benchmarks/ticks_cost.py [--schedules 10000] [--repeat 5]

Measures, for a mix of crons (every minute, every 5 minutes, hourly, a fixed daily hour, weekdays, monthly,
yearly) in zones with and without DST (UTC, America/New_York, Europe/Berlin, Europe/Dublin,
Australia/Lord_Howe, Asia/Kolkata):

1. `next_tick(cron, zone, t)` per call, t spread over a year (what `runtime.service.TickTrigger` calls after
   every fire);
2. `ticks(cron, zone, start, end)` over one local hour per call (what `dry-run` calls per schedule);
3. the tick part of a `dry-run --hour 3` of `--schedules` schedules (the mix above, round robin) on the
   spring-forward day 2026-03-29, whole: hour window plus ticks, in milliseconds.

Each figure is the median of `--repeat` runs; the `lru_cache`s of parsed crons and zones are warm (as in a
running sidecar). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from scheduler.commands.dryrun import hour_window
from scheduler.planning.ticks import next_tick, ticks

CRONS = (
    "* * * * *",
    "*/5 * * * *",
    "0 * * * *",
    "30 2 * * *",
    "15 14 * * 1-5",
    "0 0 1 * *",
    "0 0 1 1 *",
)
ZONES = (
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "Europe/Dublin",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
)
_YEAR_START = datetime(2026, 1, 1, tzinfo=UTC)


def _instants(n: int) -> list[datetime]:
    """n instants spread over 2026, none on a whole minute."""
    step = timedelta(days=365) / n
    return [_YEAR_START + step * i + timedelta(seconds=17) for i in range(n)]


def _median_seconds(run: object, repeat: int) -> float:
    assert callable(run)
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        run()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--schedules", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200, help="calls per cron and zone")
    args = parser.parse_args()
    at = _instants(args.calls)
    print("| cron | next_tick µs/call | ticks over one local hour µs/call |")
    print("|---|---|---|")
    for cron in CRONS:
        windows = [
            (*hour_window(t.astimezone(ZoneInfo(z)).date(), t.astimezone(ZoneInfo(z)).hour, ZoneInfo(z)), z)
            for z in ZONES
            for t in at
        ]
        for z in ZONES:  # warm the caches
            next_tick(cron, z, at[0])

        def nexts(cron: str = cron) -> None:
            for z in ZONES:
                for t in at:
                    next_tick(cron, z, t)

        def hours(cron: str = cron, windows: list[tuple[datetime, datetime, str]] = windows) -> None:
            for start, end, z in windows:
                list(ticks(cron, z, start, end))

        calls = len(ZONES) * len(at)
        n = _median_seconds(nexts, args.repeat) / calls * 1e6
        h = _median_seconds(hours, args.repeat) / calls * 1e6
        print(f"| `{cron}` | {n:.1f} | {h:.1f} |")

    mix = list(itertools.islice(itertools.cycle(itertools.product(CRONS, ZONES)), args.schedules))
    day = date(2026, 3, 29)

    def dry_run() -> None:
        for cron, z in mix:
            start, end = hour_window(day, 3, ZoneInfo(z))
            list(ticks(cron, z, start, end))

    total = _median_seconds(dry_run, args.repeat)
    print(f"\ndry-run --hour 3 --date {day} of {args.schedules} schedules, ticks only: {total * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
