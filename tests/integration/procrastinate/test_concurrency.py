"""Concurrent fan-outs over overlapping queueing_locks neither deadlock nor both win a key."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import psycopg

from scheduler.types import Accepted, ChunkResult, Dropped, DropReason
from tests.integration.procrastinate.conftest import batch, spec

if TYPE_CHECKING:
    from scheduler.backends.procrastinate import ProcrastinateBackend

ROUNDS = 3
KEYS = 400


def test_opposite_orders_on_two_connections_report_exactly(
    backend: ProcrastinateBackend, queue_dsn: str
) -> None:
    """Two transactions enqueue overlapping keys in opposite orders: no deadlock, each key won exactly once."""
    for round_ in range(ROUNDS):
        keys = [f"r{round_}:k{i:04d}" for i in range(KEYS)]
        # Side one takes the first three quarters ascending, side two the last three quarters descending.
        sides = [keys[: KEYS * 3 // 4], list(reversed(keys[KEYS // 4 :]))]
        barrier = threading.Barrier(len(sides))

        def enqueue(side: list[str], barrier: threading.Barrier = barrier) -> ChunkResult:
            with psycopg.connect(queue_dsn) as conn:
                conn.execute("SELECT 1")  # open the transaction before racing
                barrier.wait()
                result = backend.enqueue_many(conn, batch(*(spec(k, k) for k in side)))
                conn.commit()
                return result

        with ThreadPoolExecutor(max_workers=len(sides)) as pool:
            results = list(pool.map(enqueue, sides))

        won: dict[str, str] = {}
        lost: dict[str, Dropped] = {}
        for side, result in zip(sides, results, strict=True):
            assert [o.key for o in result.outcomes] == side
            for outcome in result.outcomes:
                if isinstance(outcome, Accepted):
                    assert outcome.key not in won
                    won[outcome.key] = outcome.job_id
                else:
                    assert outcome.reason is DropReason.POLICY_CONFLICT
                    lost[outcome.key] = outcome
        assert sorted(won) == keys
        overlap = set(sides[0]) & set(sides[1])
        assert set(lost) == overlap
        assert {k: (d.holder_id, d.holder_state) for k, d in lost.items()} == {
            k: (won[k], "todo") for k in overlap
        }
        assert len(won) + len(lost) == sum(len(side) for side in sides)
