"""A fan-out's chunks sent as one COPY (`ChunkStream`) report exactly what one statement per chunk reports;
an error while the COPY is open writes nothing. (`tests/integration/perf/test_statements.py` counts the
statements and covers a COPY refused by a slot taken meanwhile.)"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from scheduler.backends.copystream import CopyStream
from scheduler.backends.pgboss.adapter import _CopyStream
from scheduler.errors import PlanError
from scheduler.fanout import fire
from scheduler.types import Accepted, Dropped, DropReason
from tests.integration.fanout.conftest import job_count, load_fanout, outcomes
from tests.integration.pgboss.interop import send_steps

if TYPE_CHECKING:
    from pathlib import Path

    import psycopg

TICK = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
KEYLESS = """\
schedules:
  incident:
    cron: "0 * * * *"
    cohort:
      sql: select 'org' || i as key, json_build_object('org', i) as data from generate_series(1, 13) as i
    queue: insights
"""
"""The seed incident: 13 jobs with no singleton key into a `stately` queue, which has room for one."""


@pytest.mark.parametrize("chunk_size", [13, 5])
def test_keyless_jobs_into_a_one_per_slot_queue_read_the_same_through_one_copy_or_chunk_by_chunk(
    tmp_path: Path,
    environ: dict[str, str],
    db: psycopg.Connection[Any],
    chunk_size: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One chunk of 13, or three chunks (5, 5, 3) whose keyless jobs all share one slot: with the stream and
    without it, one job lands and the other 12 are `policy_conflict` naming it, `created`; no COPY is
    refused on the way (a later chunk's keyless jobs never join the stream)."""
    shapes = {}
    for stream in (True, False):
        db.execute("DELETE FROM pgboss.job WHERE name = 'generate-insight-post'")
        fanout = load_fanout(
            tmp_path, KEYLESS, environ, chunk_size=chunk_size, detail_limit=None, stream=stream
        )
        with caplog.at_level("INFO", logger="scheduler.fanout"):
            report = fire(fanout, "incident", TICK).report
        by_key = outcomes(report)
        (first,) = [o for o in by_key.values() if isinstance(o, Accepted)]
        assert job_count(db, "generate-insight-post") == 1
        drops = [o for o in by_key.values() if isinstance(o, Dropped)]
        assert {(d.reason, d.policy, d.holder_id, d.holder_state) for d in drops} == {
            (DropReason.POLICY_CONFLICT, "stately", first.job_id, "created")
        }
        shapes[stream] = (first.key, sorted(d.key for d in drops))
    assert shapes[True] == shapes[False]
    assert "refused" not in caplog.text


KEYED = """\
schedules:
  keyed:
    cron: "0 * * * *"
    cohort:
      sql: select i as key, json_build_object('n', i) as data from generate_series(1, 30) as i
    queue: insights
    singleton_key: "n:{key}"
"""


def test_slots_held_as_the_fan_out_begins_read_the_same_through_one_copy_or_chunk_by_chunk(
    tmp_path: Path, environ: dict[str, str], db: psycopg.Connection[Any], queues_db: str
) -> None:
    """Jobs sent by the real pg-boss wait under two of the tick's keys: through one COPY (the held slots
    read once, their jobs left out) and chunk by chunk (each chunk's INSERT meeting them), the same two
    entities are `policy_conflict` naming those jobs, `created`, and the other 28 land."""
    sent = send_steps(
        queues_db,
        [
            {
                "op": "send",
                "queue": "generate-insight-post",
                "data": {},
                "options": {"singletonKey": f"n:{k}"},
            }
            for k in (3, 17)
        ],
    )
    holders = {"3": str(sent[0]["id"]), "17": str(sent[1]["id"])}
    shapes = {}
    for stream in (True, False):
        db.execute(
            "DELETE FROM pgboss.job WHERE name = 'generate-insight-post' AND NOT id = ANY(%s::uuid[])",
            (list(holders.values()),),
        )
        fanout = load_fanout(tmp_path, KEYED, environ, chunk_size=7, detail_limit=None, stream=stream)
        by_key = outcomes(fire(fanout, "keyed", TICK).report)
        assert job_count(db, "generate-insight-post") == 30
        shapes[stream] = sorted(
            (key, type(o).__name__, getattr(o, "reason", None), getattr(o, "holder_id", None))
            for key, o in by_key.items()
            if isinstance(o, Dropped) or key in holders
        )
    assert (
        shapes[True]
        == shapes[False]
        == [(key, "Dropped", DropReason.POLICY_CONFLICT, holder) for key, holder in sorted(holders.items())]
    )


BAD_ROW = """\
schedules:
  late:
    cron: "0 * * * *"
    cohort:
      sql: >-
        select i as key, case when i = 2500 then '[1]'::jsonb else json_build_object('n', i)::jsonb end as data
        from generate_series(1, 3000) as i
    queue: bulk
    singleton_key: "n:{key}"
"""


def test_an_error_while_the_copy_is_open_fails_the_tick_and_writes_nothing(
    tmp_path: Path, environ: dict[str, str], db: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Row 2,500 is not an object: planning fails after two chunks of 1,000 went into the open COPY. The COPY
    is ended with the error, the tick raises it, and nothing is committed."""
    aborted: list[BaseException] = []
    abort = _CopyStream.abort

    def spy(self: _CopyStream, error: BaseException) -> None:
        aborted.append(error)
        abort(self, error)

    monkeypatch.setattr(_CopyStream, "abort", spy)
    fanout = load_fanout(tmp_path, BAD_ROW, environ, chunk_size=1000)
    with pytest.raises(PlanError, match="2500") as caught:
        fire(fanout, "late", TICK)
    assert aborted == [caught.value]
    assert job_count(db, "bulk") == 0


BAD_MIXED_ROW = """\
schedules:
  late-mixed:
    cron: "0 * * * *"
    cohort:
      sql: >-
        select i as key,
               case when i = 5000 then '[1]'::jsonb else json_build_object('n', i)::jsonb end as data,
               case when i %% 2 = 0 then 'proc' end as source
        from generate_series(1, 6000) as i
    lane: mixed
    singleton_key: "n:{key}"
"""


def test_an_error_with_one_copy_open_and_another_queue_spooled_writes_nothing(
    tmp_path: Path, environ: dict[str, str], db: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lane alternating between pg-boss and procrastinate: pg-boss's COPY is open and procrastinate's
    chunks are spooled when row 5,000 fails planning. Both streams are ended with the error (the spool
    dropped, its COPY never started), the tick raises it, and neither queue gets a job."""
    aborted: list[tuple[str, BaseException]] = []
    abort = CopyStream.abort

    def spy(self: CopyStream, error: BaseException) -> None:
        aborted.append((type(self).__module__, error))
        abort(self, error)

    monkeypatch.setattr(CopyStream, "abort", spy)
    db.execute("DELETE FROM procrastinate_jobs")
    db.commit()
    fanout = load_fanout(tmp_path, BAD_MIXED_ROW, environ, chunk_size=1000)
    with pytest.raises(PlanError, match="5000") as caught:
        fire(fanout, "late-mixed", TICK)
    assert sorted(aborted, key=lambda a: a[0]) == [
        ("scheduler.backends.pgboss.adapter", caught.value),
        ("scheduler.backends.procrastinate.adapter", caught.value),
    ]
    assert job_count(db, "generate-insight-post") == 0
    assert db.execute("SELECT count(*) FROM procrastinate_jobs").fetchone() == (0,)
