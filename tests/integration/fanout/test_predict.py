"""A preview is the truth: `predict` reports exactly what the following real fan-out reports."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import procrastinate

from scheduler.fanout import fire
from scheduler.types import Accepted, DropReason
from tests.integration.fanout.conftest import load_fanout, outcomes
from tests.integration.pgboss.interop import send_steps

if TYPE_CHECKING:
    from pathlib import Path

    from scheduler.types import Dropped, FanoutReport

TICK = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
BOSS_ORGS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
"""Entities b0..b11 to pg-boss (stately); b10 and b11 repeat the orgs of b0 and b1."""
PROC_ORGS = [100, 101, 102, 103, 104, 105, 100]
"""Entities p0..p6 to procrastinate; p6 repeats p0's org."""
ROWS = [f"{{ key: b{i}, data: {{ org: {org} }} }}" for i, org in enumerate(BOSS_ORGS)] + [
    f"{{ key: p{i}, source: proc, data: {{ org: {org} }} }}" for i, org in enumerate(PROC_ORGS)
]
SCHEDULE = f"""\
schedules:
  digest:
    cron: "0 * * * *"
    cohort:
      static: [{", ".join(ROWS)}]
    lane: mixed
    singleton_key: "insight:{{data.org}}"
"""


def normalized(report: FanoutReport, holders_before: set[str]) -> dict[str, tuple[Any, ...]]:
    """Per entity: accepted, or the drop with its holder named only when it was queued before the tick."""

    def one(o: Accepted | Dropped) -> tuple[Any, ...]:
        if isinstance(o, Accepted):
            return ("accepted",)
        holder = o.holder_id if o.holder_id in holders_before else "this tick"
        return (o.reason, o.singleton_key, o.policy, holder)

    return {key: one(o) for key, o in outcomes(report).items()}


def test_predict_reports_exactly_what_the_real_fanout_then_does(
    tmp_path: Path, environ: dict[str, str], queues_db: str
) -> None:
    """With keys already queued in both systems and repeats in the cohort, predict's per-entity outcomes and
    counts equal those of the real fan-out that follows."""
    sent = send_steps(
        queues_db,
        [
            {
                "op": "send",
                "queue": "generate-insight-post",
                "data": {"org": org},
                "options": {"singletonKey": f"insight:{org}"},
            }
            for org in (3, 4)
        ],
    )
    boss_ids = [s["id"] for s in sent]
    app = procrastinate.App(connector=procrastinate.SyncPsycopgConnector(conninfo=queues_db))
    with app.open():
        proc_id = app.configure_task(
            name="interop.record", queue="records", queueing_lock="insight:102"
        ).defer(org=102)
    before = {*boss_ids, str(proc_id)}
    fanout = load_fanout(tmp_path, SCHEDULE, environ, detail_limit=None)

    predicted = fire(fanout, "digest", TICK, dry=True).report
    real = fire(fanout, "digest", TICK).report

    assert normalized(predicted, before) == normalized(real, before)
    assert {q: (t.planned, t.accepted, t.dropped_by_reason) for q, t in predicted.queues.items()} == {
        q: (t.planned, t.accepted, t.dropped_by_reason) for q, t in real.queues.items()
    }
    assert normalized(real, before) == {
        **{f"b{i}": ("accepted",) for i in (0, 1, 2, 5, 6, 7, 8, 9)},
        "b3": (DropReason.POLICY_CONFLICT, "insight:3", "stately", boss_ids[0]),
        "b4": (DropReason.POLICY_CONFLICT, "insight:4", "stately", boss_ids[1]),
        "b10": (DropReason.DUPLICATE_IN_COHORT, "insight:0", None, "this tick"),
        "b11": (DropReason.DUPLICATE_IN_COHORT, "insight:1", None, "this tick"),
        **{f"p{i}": ("accepted",) for i in (0, 1, 3, 4, 5)},
        "p2": (DropReason.POLICY_CONFLICT, "insight:102", "queueing_lock", str(proc_id)),
        "p6": (DropReason.DUPLICATE_IN_COHORT, "insight:100", None, "this tick"),
    }
