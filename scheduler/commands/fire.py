"""`scheduler fire`: run one tick of one schedule now, end to end, and print the enqueue report."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg
import sentry_sdk

from scheduler.cli import EXIT_FINDINGS, EXIT_OK, HelpFormatter
from scheduler.commands.common import add_ledger_schema, add_paths, dump_json, instant_arg, load_or_print
from scheduler.errors import SchedulerError
from scheduler.fanout import Fanout, FanoutResult, after_commit, default_backends, fanout_in_transaction, fire
from scheduler.observe.events import fanout_event, unexpected_drops
from scheduler.observe.log import configure, event
from scheduler.observe.metrics import Metrics
from scheduler.planning.ticks import previous_tick
from scheduler.runtime.ledger import ALL_CLAIMS, MANUAL_CLAIMS, FiredBy, Ledger, RecentTick

if TYPE_CHECKING:
    import argparse

HELP = "run one tick of a schedule now and print what was accepted and dropped"
DESCRIPTION = """\
Runs one tick of SCHEDULE end to end: selects the cohort, plans one job per entity, enqueues each queue's
jobs on one connection (one COPY per pg-boss queue, or one bulk statement per 5,000-job chunk), and prints
the report: accepted and dropped counts, drops by reason, the dropped keys (the first 20; all with --json),
duration and connections used.

The tick is --at (an ISO instant) or, by default, the schedule's latest tick at or before now (not the
tick of an hour `dry-run --hour` showed: pass that tick's instant as --at).

The tick is claimed in the sidecar's ledger (schema --schema of the queue database, created or upgraded
first, as `scheduler run` does at start) in the transaction of its jobs, exactly as a replica claims it:
`scheduler status` shows it as fired by `manual`, and a replica reaching that tick later leaves it alone.
A tick the ledger already has as done (by the sidecar or an earlier fire) is refused with exit 1, nothing
enqueued; --force fans it out again (per-entity singleton keys still refuse the jobs whose slot is held).
A tick the sidecar skipped (too old, or by its catch-up policy) or failed is fired without --force. A
fire that fails leaves the ledger as it was. --dry predicts the report without writing anything.

Exit code 1 when nothing could be enqueued (a missing queue, a failed cohort query, a tick already done
or being fanned out right now) or, with --strict, when any job was dropped for a reason the schedule does
not list in `expected_drops`.
"""
EPILOG = """\
examples:
  scheduler fire insight-digest schedules/                   # its latest tick
  scheduler fire insight-digest --at 2026-11-24T14:00:00Z --dry schedules/
  scheduler fire insight-digest --at 2026-11-24T14:00:00Z schedules/
  scheduler fire insight-digest --at 2026-11-24T14:00:00Z --force schedules/   # again
  scheduler fire billing-rollup --json schedules/ | jq '.queues'
"""
DROPPED_KEYS_SHOWN = 20


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "fire", help=HELP, description=DESCRIPTION, epilog=EPILOG, formatter_class=HelpFormatter
    )
    p.add_argument("schedule", metavar="SCHEDULE", help="the schedule's name")
    p.add_argument(
        "--at",
        type=instant_arg,
        help="tick instant, ISO 8601 with offset (e.g. 2026-11-24T14:00:00Z); without it, the latest tick at or before now, not the next one or the hour dry-run showed",
    )
    p.add_argument("--dry", action="store_true", help="predict the report; write nothing")
    p.add_argument("--json", action="store_true", help="print the report as JSON, with every dropped key")
    p.add_argument("--strict", action="store_true", help="exit 1 on drops the schedule does not expect")
    p.add_argument(
        "--force",
        action="store_true",
        help="fan out again a tick the ledger already has as done (singleton keys still apply)",
    )
    add_ledger_schema(p)
    add_paths(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    loaded = load_or_print(args)
    if loaded is None:
        return EXIT_FINDINGS
    schedule = loaded.config.schedules.get(args.schedule)
    if schedule is None:
        known = ", ".join(sorted(loaded.config.schedules)) or "(none)"
        print(f"no schedule named {args.schedule!r}; the config has: {known}", file=sys.stderr)
        return EXIT_FINDINGS
    tick = args.at
    if tick is None:
        now = datetime.now(UTC)
        tick = previous_tick(schedule.cron, schedule.timezone, now + timedelta(microseconds=1))
        if tick is None:
            print(f"schedule {args.schedule!r} has no tick in the past year; pass --at", file=sys.stderr)
            return EXIT_FINDINGS
    logger = configure((os.environ.get("SCHEDULER_LOG_FORMAT", "text") == "json" and "json") or "text")
    fanout = Fanout(
        loaded, os.environ, default_backends(), detail_limit=None if args.json else DROPPED_KEYS_SHOWN
    )
    from scheduler.runtime.settings import Settings

    settings = Settings()
    ledger = Ledger(args.schema)
    try:
        if args.dry:
            result = fire(fanout, args.schedule, tick, dry=True)
        else:
            claimed = fire_claimed(fanout, ledger, args.schedule, tick, settings.replica_id, force=args.force)
            if isinstance(claimed, str):
                print(f"{fanout.where(args.schedule)}: {claimed}", file=sys.stderr)
                return EXIT_FINDINGS
            result = claimed
    except SchedulerError as exc:
        print(f"{fanout.where(args.schedule)}: {exc}", file=sys.stderr)
        return EXIT_FINDINGS
    report = result.report
    level, name, fields = fanout_event(report, schedule.expected_drops)
    event(logger, level, name, **fields)
    if not args.dry and not report.failure:
        from scheduler.runtime.sentry import init_sentry

        # Same settings as the sidecar: SCHEDULER_SENTRY_DSN set → metrics and drops reach Sentry.
        init_sentry(settings)
        metrics = Metrics()
        metrics.record_fanout(report)
        metrics.record_stagger(report.schedule, result.preview.stagger_samples)
        sentry_sdk.flush()  # a one-shot process: send before exiting
    if args.json:
        dump_json(report_json(result))
    else:
        print_report(result)
    if report.failure:
        return EXIT_FINDINGS
    if args.strict and unexpected_drops(report, schedule.expected_drops):
        return EXIT_FINDINGS
    return EXIT_OK


def fire_claimed(
    fanout: Fanout, ledger: Ledger, name: str, tick: datetime, replica: str, *, force: bool
) -> FanoutResult | str:
    """Claim `tick` of schedule `name` in the ledger as a manual fire and fan it out in the claim's
    transaction (the sidecar's path: `tick_lock`, `tick_claim`, jobs, counts, commit). The result, or the
    sentence saying why nothing was enqueued (the tick is in flight elsewhere, or already done). A fan-out
    that fails (a missing queue) rolls its claim back and is returned as a result with its failure."""
    with fanout.connect_queue_db(name) as conn:
        ledger.migrate(conn)
        with conn.transaction() as txn:
            if not ledger.try_lock(conn, name, tick):
                return (
                    f"tick {tick.isoformat()} of schedule {name!r} is being fanned out right now (by the "
                    "sidecar or another `scheduler fire`); nothing enqueued. `scheduler status` shows it "
                    "once it committed."
                )
            over = ALL_CLAIMS if force else MANUAL_CLAIMS
            attempt = ledger.claim(
                conn, name, tick, replica, datetime.now(UTC), fired_by=FiredBy.MANUAL, over=over
            )
            if attempt is None:
                return _already_done(name, tick, ledger.get(conn, name, tick))
            result = fanout_in_transaction(fanout, conn, name, tick)
            if result.report.failure:
                raise psycopg.Rollback(txn)
            ledger.finish(conn, name, tick, result.report, datetime.now(UTC))
        if not result.report.failure:
            after_commit(fanout, conn, result)
        return result


def _already_done(name: str, tick: datetime, row: RecentTick | None) -> str:
    """Why a manual claim lost: the tick is done (by whom, when, with what counts)."""
    what = f"tick {tick.isoformat()} of schedule {name!r}"
    if row is None:  # the row went away between the claim and the read: nothing to explain
        return f"{what} could not be claimed; nothing enqueued. Try again."
    when = row.finished_at or row.started_at
    return (
        f"{what} was already fanned out ({row.fired_by}, by {row.replica}, at {when.isoformat(timespec='seconds')}: "
        f"{row.accepted} accepted, {row.dropped} dropped); nothing enqueued. --force fans it out again "
        "(singleton keys still refuse the jobs whose slot is held), or pass --at another tick."
    )


def report_json(result: FanoutResult) -> dict[str, Any]:
    report = result.report
    return {
        "schedule": report.schedule,
        "tick": report.tick.isoformat(),
        "dry": report.dry,
        "failure": report.failure,
        "cohort_size": report.cohort_size,
        "planned": report.planned,
        "accepted": report.accepted,
        "dropped": report.dropped,
        "dropped_by_reason": {r.value: n for r, n in report.dropped_by_reason().items()},
        "duration_seconds": round(report.duration_seconds, 4),
        "connections_used": report.connections_used,
        "queues": {
            t.queue.logical: {
                "name": t.queue.name,
                "backend": t.queue.backend.value,
                "planned": t.planned,
                "accepted": t.accepted,
                "dropped": t.dropped,
                "dropped_by_reason": {r.value: n for r, n in t.dropped_by_reason.items()},
                "accepted_jobs": [{"key": a.key, "job_id": a.job_id} for a in t.accepted_sample],
                "dropped_jobs": [d.as_json() for d in t.dropped_sample],
            }
            for t in report.queues.values()
        },
    }


def print_report(result: FanoutResult) -> None:
    report = result.report
    verb = "would enqueue" if report.dry else "enqueued"
    print(f"{report.schedule} @ {report.tick.isoformat()}: cohort {report.cohort_size}")
    if report.failure:
        print(f"  NOTHING ENQUEUED: {report.failure}; every entity is reported queue_missing")
    for t in report.queues.values():
        reasons = ", ".join(f"{r.value} {n}" for r, n in t.dropped_by_reason.items())
        print(
            f"  {t.queue.name} ({t.queue.backend.value}): {t.planned} planned, {t.accepted} {verb}, "
            f"{t.dropped} dropped" + (f" ({reasons})" if reasons else "")
        )
        for d in t.dropped_sample[:DROPPED_KEYS_SHOWN]:
            # a holder from the same cohort has no state: it is being inserted with this drop
            state = f" ({d.holder_state})" if d.holder_state else ""
            holder = f", held by job {d.holder_id}{state}" if d.holder_id else ""
            policy = f" [{d.policy}]" if d.policy else ""
            print(f"    dropped {d.key}: {d.reason.value}{policy}{holder}")
        if t.dropped > DROPPED_KEYS_SHOWN:
            print(f"    ... and {t.dropped - DROPPED_KEYS_SHOWN} more (use --json for all)")
    print(f"  {report.duration_seconds * 1000:.0f} ms, {report.connections_used} queue connection(s)")
