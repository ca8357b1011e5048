"""`scheduler dry-run`: what every schedule firing during one hour would enqueue. Writes nothing."""

from __future__ import annotations

import itertools
import sys
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import psycopg

from scheduler.cli import EXIT_FINDINGS, EXIT_OK, HelpFormatter
from scheduler.commands.checkdb import live_policy_findings, live_shared_slots, read_queues
from scheduler.commands.common import (
    add_paths,
    date_arg,
    dump_json,
    finding_json,
    has_errors,
    hour_arg,
    load_or_print,
    print_findings,
)
from scheduler.config import Config, Finding, Severity, lint, queues_of, resolve_queue
from scheduler.config.models import format_duration
from scheduler.config.placeholders import COHORT_PARAMETERS, problems
from scheduler.errors import SchedulerError
from scheduler.fanout import Fanout, FanoutResult, PlanPreview, default_backends, plan_only, predict
from scheduler.planning.rows import printable
from scheduler.planning.ticks import ticks, wall_instant

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

    from scheduler.config import LoadedConfig
    from scheduler.types import QueueInfo

DROPS_LISTED = 10
"""Predicted drops listed per queue and tick unless --drops says otherwise."""
HELP = "preview what the schedules would enqueue during one hour (writes nothing)"
DESCRIPTION = """\
For every schedule that fires during HOUR (in the schedule's own time zone) on DATE: the tick instants,
the cohort (SQL on the app database in a READ ONLY transaction with a statement timeout; static lists
need no database), its size, the jobs per queue, the stagger spread (earliest/latest start_after and a
per-5-minute histogram), the first jobs, and findings. When the queue database is configured it reads
the live queues and predicts exactly which entities would be dropped, and why.

A tick is shown in the hour it happens: on a day that skips local 02:00-03:00, a 02:15 schedule fires at
03:00 and is shown under --hour 3 (--hour 2 says the hour does not happen); a repeated hour covers both of
its occurrences.

Exit code 1 when a finding is an error (e.g. a fan-out that a queue's policy would cut to one job).
"""
EPILOG = """\
examples:
  scheduler dry-run --hour 14 schedules/
  scheduler dry-run --hour 3 --date 2026-03-29 --schedule billing-rollup --json schedules/
      (02:15 Berlin is skipped that day: the 02:15 rollup fires at 03:00, in the hour it happens)
"""


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "dry-run", help=HELP, description=DESCRIPTION, epilog=EPILOG, formatter_class=HelpFormatter
    )
    p.add_argument("--hour", type=hour_arg, required=True, help="local hour 0-23 in each schedule's zone")
    p.add_argument("--date", type=date_arg, help="YYYY-MM-DD (default: today in each schedule's zone)")
    p.add_argument("--schedule", action="append", metavar="NAME", help="only this schedule (repeatable)")
    p.add_argument(
        "--limit", type=int, default=10, metavar="N", help="planned jobs to list per tick (default 10)"
    )
    p.add_argument(
        "--drops",
        type=int,
        default=DROPS_LISTED,
        metavar="N",
        help=f"predicted drops to list per queue and tick (default {DROPS_LISTED}); the rest are counted",
    )
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    add_paths(p)
    p.set_defaults(handler=run)


def hour_window(day: date, hour: int, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The real instants [start, end) covered by local `hour` on `day`: a repeated hour covers two, a skipped
    one none (start == end), so a tick a spring-forward moves out of it is shown in the hour it happens."""
    end_day, end_hour = (day, hour + 1) if hour < 23 else (day + timedelta(days=1), 0)
    start = wall_instant(datetime.combine(day, time(hour)), zone.key)
    return start, wall_instant(datetime.combine(end_day, time(end_hour)), zone.key)


def skipped_hour_note(day: date, hour: int, zone: ZoneInfo, start: datetime, end: datetime) -> str | None:
    """What to say when local `hour` does not happen on `day` (the clocks jump over it)."""
    if start < end:
        return None
    resumed = start.astimezone(zone)
    return (
        f"{hour:02d}:00-{hour + 1:02d}:00 does not happen on {day} in {zone.key} (the clocks jump to "
        f"{resumed:%Y-%m-%d %H:%M}); a fixed-hour tick meant for it fires then: --hour {resumed.hour} --date {resumed.date()}"
    )


def run(args: argparse.Namespace) -> int:
    loaded = load_or_print(args)
    if loaded is None:
        return EXIT_FINDINGS
    import os

    # The report keeps the drops it lists (--drops) and counts the rest.
    fanout = Fanout(
        loaded,
        os.environ,
        default_backends(),
        detail_limit=max(args.drops, 0),
        preview_limit=max(args.limit, 0),
    )
    names = args.schedule or list(loaded.config.schedules)
    unknown = [n for n in names if n not in loaded.config.schedules]
    if unknown:
        print(
            f"no schedule named {unknown[0]!r}; the config has: {', '.join(loaded.config.schedules)}",
            file=sys.stderr,
        )
        return EXIT_FINDINGS

    infos, db_findings = _live_queues(fanout, names)
    # SCH001 is not repeated where SCH104 reports the same schedule and queue with its live policy.
    live_checked = live_shared_slots(fanout, infos) if infos is not None else {}
    findings: list[Finding] = [
        f for f in lint(loaded, live_checked=live_checked) if _concerns(f, loaded, names)
    ]
    findings += db_findings
    if infos is not None:
        findings += [f for f in live_policy_findings(fanout, infos) if _concerns(f, loaded, names)]

    now = datetime.now(UTC)
    doc: dict[str, Any] = {"hour": args.hour, "date": str(args.date) if args.date else None, "schedules": []}
    for name in names:
        schedule = loaded.config.schedules[name]
        zone = ZoneInfo(schedule.timezone)
        day = args.date or now.astimezone(zone).date()
        start, end = hour_window(day, args.hour, zone)
        entry: dict[str, Any] = {
            "name": name,
            "where": str(loaded.locations.of(("schedules", name))),
            "cron": schedule.cron,
            "timezone": schedule.timezone,
            "window": [start.isoformat(), end.isoformat()],
            "predicted": infos is not None,
            "ticks": [],
        }
        note = skipped_hour_note(day, args.hour, zone, start, end)
        if note is not None:
            entry["note"] = note
        cohort_env = _missing_cohort_env(fanout, name)
        if cohort_env:
            findings.append(
                Finding(
                    "SCH106",
                    Severity.WARNING,
                    f"schedule {name!r}: its cohort is SQL on the app database; set {cohort_env} to preview "
                    "the cohort (ticks are listed without it)",
                    loaded.locations.of(("schedules", name, "cohort", "sql")),
                )
            )
        # One failure per schedule, not one per tick: SQL that cannot run (SCH009) is not tried, and after
        # a tick's cohort fails the schedule's later ticks are listed without being evaluated.
        unevaluated = f"set {cohort_env}" if cohort_env else None
        sql_text = schedule.cohort.sql
        if unevaluated is None and sql_text is not None and problems(sql_text, COHORT_PARAMETERS):
            unevaluated = "its SQL cannot run (SCH009 below)"
        for tick in ticks(schedule.cron, schedule.timezone, start, end):
            if unevaluated is not None:
                entry["ticks"].append({"tick": tick.isoformat(), "skipped": unevaluated})
                continue
            try:
                result = _preview(fanout, name, tick, infos)
            except SchedulerError as exc:
                findings.append(
                    Finding("SCH200", Severity.ERROR, str(exc), loaded.locations.of(("schedules", name)))
                )
                entry["ticks"].append({"tick": tick.isoformat(), "error": str(exc)})
                unevaluated = f"the cohort failed at {tick.isoformat()} (SCH200 below)"
                continue
            entry["ticks"].append(_tick_doc(loaded.config, result, tick, args.limit))
        doc["schedules"].append(entry)
    doc["findings"] = [finding_json(f) for f in findings]

    if args.json:
        dump_json(doc)
    else:
        _print_text(doc, findings, infos is not None)
    return EXIT_FINDINGS if has_errors(findings) else EXIT_OK


def _concerns(finding: Finding, loaded: LoadedConfig, names: list[str]) -> bool:
    if finding.location is None or len(names) == len(loaded.config.schedules):
        return True
    return any(
        finding.location.file == loaded.locations.of(("schedules", n)).file
        and finding.location.line >= loaded.locations.of(("schedules", n)).line
        for n in names
    )


def _missing_cohort_env(fanout: Fanout, name: str) -> str | None:
    """The environment variable an SQL cohort needs and lacks, if any."""
    cohort = fanout.loaded.config.schedules[name].cohort
    ref = fanout.loaded.config.databases.get(cohort.database)
    if cohort.sql is None or ref is None or fanout.environ.get(ref.dsn_env):
        return None
    return ref.dsn_env


def _live_queues(fanout: Fanout, names: list[str]) -> tuple[dict[str, QueueInfo] | None, list[Finding]]:
    """Read the live queues when every queue database of these schedules is configured; else plan only."""
    config = fanout.loaded.config
    databases = {q.database for n in names for q in queues_of(config, config.schedules[n])}
    missing_env = [
        config.databases[d].dsn_env
        for d in sorted(databases)
        if d in config.databases and not fanout.environ.get(config.databases[d].dsn_env)
    ]
    if missing_env:
        note = Finding(
            "SCH105",
            Severity.WARNING,
            f"queue database not configured (set {', '.join(missing_env)}): showing the plan without "
            "predicting drops against the live queues",
            None,
        )
        return None, [note]
    return read_queues(fanout)


def _preview(fanout: Fanout, name: str, tick: datetime, infos: dict[str, QueueInfo] | None) -> FanoutResult:
    if infos is None:
        return plan_only(fanout, name, tick)
    with fanout.connect_queue_db(name) as conn:
        conn.read_only = True
        with conn.transaction() as txn:
            result = predict(fanout, conn, name, tick)
            raise psycopg.Rollback(txn)
    return result


def _tick_doc(fanout_config: Config, result: FanoutResult, tick: datetime, limit: int) -> dict[str, Any]:
    report, preview = result.report, result.preview
    queues: dict[str, Any] = {}
    for logical, n in preview.stats.jobs_by_queue.items():
        totals = report.queues.get(logical)
        info = result.queue_infos.get(logical)
        ref = resolve_queue(fanout_config, logical)
        entry: dict[str, Any] = {"planned": n, "name": ref.name, "backend": ref.backend.value}
        if info is not None:
            entry["live_policy"] = info.policy
            entry["exists"] = info.exists
        if totals is not None:
            entry["accepted"] = totals.accepted
            entry["dropped"] = totals.dropped
            entry["dropped_by_reason"] = {r.value: c for r, c in totals.dropped_by_reason.items()}
            entry["dropped_keys"] = [d.as_json() for d in totals.dropped_sample]
            entry["dropped_not_listed"] = totals.dropped - len(totals.dropped_sample)
        queues[logical] = entry
    return {
        "tick": tick.isoformat(),
        "cohort_size": preview.stats.rows,
        "failure": report.failure,
        "queues": queues,
        "stagger": _stagger_doc(preview, tick),
        "jobs": [
            {
                "key": job.key,
                "queue": logical,
                "singleton_key": job.singleton_key,
                "start_after": job.start_after.isoformat(),
                "offset_seconds": (job.start_after - tick).total_seconds(),
                "data": dict(job.data),
            }
            for logical, job in preview.first_jobs[:limit]
        ],
        "defaulted_sources": preview.stats.defaulted_sources,
    }


def _stagger_doc(preview: PlanPreview, tick: datetime) -> dict[str, Any]:
    if preview.earliest is None or preview.latest is None:
        return {"earliest": None, "latest": None, "histogram": {}}
    return {
        "earliest": preview.earliest.isoformat(),
        "latest": preview.latest.isoformat(),
        "earliest_offset": format_duration(_whole_seconds(preview.earliest - tick)),
        "latest_offset": format_duration(_whole_seconds(preview.latest - tick)),
        "histogram": {f"+{b * 5}m": n for b, n in sorted(preview.histogram.items())},
    }


def _whole_seconds(value: timedelta) -> timedelta:
    return timedelta(seconds=int(value.total_seconds()))


def _skipped_for(reason: str) -> Callable[[dict[str, Any]], bool]:
    return lambda tick: bool(tick.get("skipped") == reason)


def _print_text(doc: dict[str, Any], findings: list[Finding], predicted: bool) -> None:
    out = sys.stdout
    for entry in doc["schedules"]:
        print(f"{entry['name']}  ({entry['where']})  cron {entry['cron']!r} {entry['timezone']}", file=out)
        if "note" in entry:
            print(f"  no tick: {entry['note']}", file=out)
        elif not entry["ticks"]:
            print(f"  no tick between {entry['window'][0]} and {entry['window'][1]}", file=out)
        shown = entry["ticks"]
        for i, t in enumerate(shown):
            reason = t.get("skipped")
            if reason is not None:
                # A run of ticks not evaluated for one reason is one line (a `* * * * *` hour has 60).
                if i and shown[i - 1].get("skipped") == reason:
                    continue
                run = [u["tick"] for u in itertools.takewhile(_skipped_for(reason), shown[i:])]
                first, last = run[0], run[-1]
                when = f"tick {first}" if len(run) == 1 else f"{len(run)} ticks {first} … {last}"
                print(f"  {when}: cohort not evaluated: {reason}", file=out)
                continue
            print(f"  tick {t['tick']}", file=out)
            if "error" in t:
                print(f"    error: {t['error']}", file=out)
                continue
            print(f"    cohort: {t['cohort_size']} entities", file=out)
            if t["failure"]:
                print(f"    NOTHING WOULD BE ENQUEUED: {t['failure']}", file=out)
            for logical, q in t["queues"].items():
                line = f"    queue {q.get('name', logical)}: {q['planned']} planned"
                if predicted and "accepted" in q:
                    reasons = ", ".join(f"{r} {n}" for r, n in q["dropped_by_reason"].items())
                    line += f" -> {q['accepted']} accepted, {q['dropped']} dropped" + (
                        f" ({reasons})" if reasons else ""
                    )
                    if q.get("live_policy"):
                        line += f"  [live policy {q['live_policy']}]"
                print(line, file=out)
                for d in q.get("dropped_keys", []):
                    holder = f", held by {d['holder_id']} ({d['holder_state']})" if d["holder_id"] else ""
                    detail = f" ({d['detail']})" if d.get("detail") else ""
                    print(f"      dropped {printable(d['key'])}: {d['reason']}{holder}{detail}", file=out)
                if q.get("dropped_not_listed"):
                    print(f"      … and {q['dropped_not_listed']} more", file=out)
            s = t["stagger"]
            if s["earliest"]:
                print(
                    f"    start_after: earliest +{s['earliest_offset']}, latest +{s['latest_offset']}",
                    file=out,
                )
                peak = max(s["histogram"].values())
                for bucket, n in s["histogram"].items():
                    bar = "#" * max(1, round(30 * n / peak))
                    print(f"      {bucket:>6} {bar} {n}", file=out)
            if t["jobs"]:
                print(f"    first {len(t['jobs'])} jobs:", file=out)
                for j in t["jobs"]:
                    offset = format_duration(_whole_seconds(timedelta(seconds=j["offset_seconds"])))
                    key, queue, singleton = printable(j["key"]), j["queue"], j["singleton_key"]
                    singleton = None if singleton is None else printable(singleton)
                    print(f"      {key:<20} {queue:<18} +{offset:<8} key={singleton}", file=out)
        print(file=out)
    if findings:
        print("findings:", file=out)
        print_findings(findings, out)
