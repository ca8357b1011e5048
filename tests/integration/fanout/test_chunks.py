"""Tick-level dedupe across chunks: a singleton key repeated in a later chunk is `duplicate_in_cohort`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from scheduler.errors import PlanError
from scheduler.fanout import fire
from scheduler.types import Accepted, Dropped, DropReason
from tests.integration.fanout.conftest import job_count, load_fanout, outcomes

if TYPE_CHECKING:
    from pathlib import Path

    import psycopg

TICK = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
ROWS, GROUPS = 1000, 300
SCHEDULE = f"""\
schedules:
  groups:
    cron: "0 * * * *"
    cohort:
      sql: >
        select 'e' || i as key, json_build_object('group', mod(i, {GROUPS})) as data
        from generate_series(0, {ROWS - 1}) as i order by i
    queue: bulk
    singleton_key: "group:{{data.group}}"
"""


@pytest.mark.parametrize("copy_threshold", [None, 0], ids=["arrays", "copy"])
@pytest.mark.parametrize("spill_after", [50_000, 150], ids=["in-memory", "spilled"])
def test_repeats_in_later_chunks_are_duplicates_naming_the_first(
    tmp_path: Path,
    environ: dict[str, str],
    db: psycopg.Connection[Any],
    spill_after: int,
    copy_threshold: int | None,
) -> None:
    """1,000 rows in chunks of 100 share 300 keys: the first row of each key is accepted, every repeat is
    dropped duplicate_in_cohort naming that row's job, whether keys stay in memory or spill to the local
    store after the first chunk, through either insert path."""
    fanout = load_fanout(
        tmp_path,
        SCHEDULE,
        environ,
        chunk_size=100,
        detail_limit=None,
        spill_after=spill_after,
        copy_threshold=copy_threshold,
    )

    report = fire(fanout, "groups", TICK).report

    assert (report.planned, report.accepted, report.dropped) == (ROWS, GROUPS, ROWS - GROUPS)
    assert report.dropped_by_reason() == {DropReason.DUPLICATE_IN_COHORT: ROWS - GROUPS}
    found = outcomes(report)
    accepted = {k: o for k, o in found.items() if isinstance(o, Accepted)}
    assert set(accepted) == {f"e{i}" for i in range(GROUPS)}
    for i in range(GROUPS, ROWS):
        drop = found[f"e{i}"]
        assert isinstance(drop, Dropped)
        assert drop.reason is DropReason.DUPLICATE_IN_COHORT
        assert drop.singleton_key == f"group:{i % GROUPS}"
        assert drop.holder_id == accepted[f"e{i % GROUPS}"].job_id
    assert job_count(db, "bulk") == GROUPS
    rows = db.execute("SELECT singleton_key, id::text FROM pgboss.job WHERE name = 'bulk'").fetchall()
    assert dict(rows) == {f"group:{i}": accepted[f"e{i}"].job_id for i in range(GROUPS)}


SAME_CHUNK = """\
schedules:
  repeats:
    cron: "0 * * * *"
    cohort:
      static: [{ key: a, data: { g: 1 } }, { key: b, data: { g: 2 } }, { key: c, data: { g: 1 } }]
    queue: bulk
    singleton_key: "g:{data.g}"
"""


def test_a_repeat_within_one_chunk_names_the_job_enqueued_in_that_chunk(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    """A key repeated inside a single chunk is dropped duplicate_in_cohort naming the job its first row got."""
    fanout = load_fanout(tmp_path, SAME_CHUNK, environ, detail_limit=None)

    found = outcomes(fire(fanout, "repeats", TICK).report)

    first = found["a"]
    assert isinstance(first, Accepted)
    assert isinstance(found["b"], Accepted)
    assert found["c"] == Dropped(
        key="c", reason=DropReason.DUPLICATE_IN_COHORT, singleton_key="g:1", holder_id=first.job_id
    )


UNKEYED = """\
schedules:
  unkeyed:
    cron: "0 * * * *"
    cohort:
      sql: select 'e' || i as key, '{}'::jsonb as data from generate_series(1, 3000) as i
    queue: bulk
"""


def test_an_encoding_error_in_the_planning_thread_fails_the_tick_and_writes_nothing(
    tmp_path: Path, environ: dict[str, str], db: psycopg.Connection[Any]
) -> None:
    """The chunks are encoded in the planning thread: a batch the queue refuses there (key_strict_fifo
    without singleton keys) raises in the caller, and the tick commits nothing."""
    db.execute("UPDATE pgboss.queue SET policy = 'key_strict_fifo' WHERE name = 'bulk'")
    fanout = load_fanout(tmp_path, UNKEYED, environ, chunk_size=1000, copy_threshold=0)

    with pytest.raises(PlanError, match="key_strict_fifo"):
        fire(fanout, "unkeyed", TICK)

    assert job_count(db, "bulk") == 0
