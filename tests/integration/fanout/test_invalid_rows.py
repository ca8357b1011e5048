"""A row the queue cannot hold is dropped as `invalid_row` with its key and reason; the rest of the cohort
goes into the real pg-boss and procrastinate tables, and the prediction says the same beforehand."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from scheduler.backends.pgboss.adapter import SINGLETON_KEY_INDEX_BYTES
from scheduler.backends.procrastinate.adapter import QUEUEING_LOCK_INDEX_BYTES
from scheduler.fanout import fanout_in_transaction, predict
from scheduler.types import Accepted, Dropped, DropReason
from tests.integration.fanout.conftest import load_fanout, outcomes

if TYPE_CHECKING:
    from pathlib import Path

    from scheduler.types import FanoutReport

TICK = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
# A key of random hex, which no index compresses: past every limit, under PostgreSQL's own row limits.
LONG_LOCK = "(SELECT string_agg(md5(i::text), '') FROM generate_series(1, 90) i)"
APP = f"""
CREATE TABLE app_json (key text, data json, lock text);
INSERT INTO app_json VALUES
  ('g1', '{{"n": 1, "u": "\\u00e9"}}', 'g1'),
  ('nul-payload', '{{"n": "a\\u0000b"}}', 'n1'),
  ('g2', '{{"n": 2}}', 'g2'),
  ('surrogate-payload', '{{"n": ["\\ud800"]}}', 'n2'),
  ('long-lock', '{{"n": 3}}', {LONG_LOCK}),
  ('g3', '{{"n": "\\ud834\\udd1e"}}', 'g3');
CREATE TABLE app_cols (key text, amount float8, lock text);
INSERT INTO app_cols VALUES ('c1', 1.5, 'c1'), ('nan', 'NaN', 'c2'), ('inf', '-Infinity', 'c3'), ('c2', 0, 'c4');
"""
"""Two cohorts: json payloads (one bad row of each kind a json column can hold: a NUL escape, a lone
surrogate, a singleton key past the index) and payloads built from columns (NaN, -Infinity)."""


def _app(db: psycopg.Connection[Any]) -> None:
    db.execute(APP)


def _schedules(queue: str) -> str:
    # The long lock is in column `source` (a cohort column the key template may name; no lane routes it).
    return f"""\
schedules:
  from-json:
    cron: "0 * * * *"
    cohort: {{ sql: "select key, data, lock as source from app_json" }}
    queue: {queue}
    singleton_key: "j:{{source}}"
  from-columns:
    cron: "0 * * * *"
    cohort: {{ sql: "select key, amount from app_cols" }}
    queue: {queue}
    singleton_key: "c:{{key}}"
"""


EXPECTED = {
    "from-json": {
        "nul-payload": "the payload value at data.n 'a\\x00b' holds a NUL character",
        "surrogate-payload": "the payload value at data.n[0] '\\ud800' holds a lone surrogate",
        "long-lock": " is 2,882 bytes; the queue's unique index holds at most ",
    },
    "from-columns": {
        "nan": "the payload value at data.amount is nan; JSON has no NaN or Infinity",
        "inf": "the payload value at data.amount is -inf; JSON has no NaN or Infinity",
    },
}
GOOD_KEYS = {"from-json": ["g1", "g2", "g3"], "from-columns": ["c1", "c2"]}


def _verdicts(report: FanoutReport) -> dict[str, tuple[str, str | None]]:
    found: dict[str, tuple[str, str | None]] = {}
    for key, outcome in outcomes(report).items():
        if isinstance(outcome, Accepted):
            found[key] = ("accepted", None)
        else:
            assert isinstance(outcome, Dropped)
            found[key] = (outcome.reason.value, outcome.detail)
    return found


def _queued(db: psycopg.Connection[Any], queue: str) -> list[str]:
    """The singleton keys / queueing locks of the jobs in the real queue table."""
    if queue == "insights":
        rows = db.execute("SELECT singleton_key FROM pgboss.job WHERE name = 'generate-insight-post'")
    else:
        rows = db.execute("SELECT queueing_lock FROM procrastinate_jobs WHERE queue_name = 'records'")
    return sorted(str(r[0]) for r in rows.fetchall())


@pytest.mark.parametrize(
    ("queue", "stream"),
    [("insights", True), ("insights", False), ("records", True), ("records", False)],
    ids=["pgboss-one-copy", "pgboss-per-chunk", "procrastinate-one-copy", "procrastinate-per-chunk"],
)
def test_bad_rows_are_dropped_and_the_rest_goes_in(
    tmp_path: Path,
    db: psycopg.Connection[Any],
    queues_db: str,
    environ: dict[str, str],
    queue: str,
    stream: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One bad row of each kind among good rows: the good rows are jobs in the real queue table, each bad one
    is `invalid_row` with its key and reason, the prediction before had the same outcomes, and each drop is
    logged."""
    _app(db)
    fanout = load_fanout(tmp_path, _schedules(queue), environ, detail_limit=None, stream=stream)
    limit = (
        SINGLETON_KEY_INDEX_BYTES - len("generate-insight-post")
        if queue == "insights"
        else QUEUEING_LOCK_INDEX_BYTES
    )
    for name in ("from-json", "from-columns"):
        with psycopg.connect(queues_db) as conn:
            conn.read_only = True
            predicted = predict(fanout, conn, name, TICK).report
            conn.rollback()
        with psycopg.connect(queues_db) as conn, caplog.at_level(logging.WARNING, logger="scheduler.fanout"):
            result = fanout_in_transaction(fanout, conn, name, TICK)
            conn.commit()
        done = result.report
        # job.stagger_delay samples the accepted jobs only (every job of so small a cohort is sampled).
        assert len(result.preview.stagger_samples) == done.accepted

        verdicts = _verdicts(done)
        assert _verdicts(predicted) == verdicts
        assert done.dropped_by_reason() == {DropReason.INVALID_ROW: len(EXPECTED[name])}
        assert done.accepted == len(GOOD_KEYS[name])
        assert {k for k, (v, _) in verdicts.items() if v == "accepted"} == set(GOOD_KEYS[name])
        for key, reason in EXPECTED[name].items():
            verdict, detail = verdicts[key]
            assert verdict == "invalid_row"
            assert detail is not None
            assert reason in detail, detail
            if key == "long-lock":
                assert detail.endswith(
                    f"{limit:,} (shorten the singleton_key template, or hash the long part)"
                )
        logged = [r for r in caplog.records if r.getMessage() == "row_invalid"]
        assert sorted(r.__dict__["fields"]["key"] for r in logged) == sorted(EXPECTED[name])
        caplog.clear()
    assert _queued(db, queue) == sorted([*(f"j:{k}" for k in GOOD_KEYS["from-json"]), "c:c1", "c:c2"])
