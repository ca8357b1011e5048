"""The holder reads (which job holds each slot) probe the policy's unique index once per slot, however many
jobs wait in the queue: a prediction or a fallback against a backlog must not scan the queue per chunk."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import pytest

from scheduler.backends.pgboss.adapter import _query
from scheduler.types import Batch
from tests.integration.pgboss.interop import job, policy_queue, queue_ref

if TYPE_CHECKING:
    import psycopg

    from scheduler.backends.pgboss import PgBossBackend

BACKLOG = 20_000
SLOTS = 5_000


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(node for child in plan.get("Plans", []) for node in _nodes(child))]


@pytest.mark.parametrize(
    ("policy", "statement"),
    [
        ("stately", "job_holder_created_many"),
        ("short", "job_holder_created_many"),
        ("exclusive", "job_holder_live_many"),
    ],
)
def test_holder_read_probes_the_index_per_slot_against_a_backlog(
    conn: psycopg.Connection[tuple[object, ...]], backend: PgBossBackend, policy: str, statement: str
) -> None:
    """20,000 waiting jobs, statistics up to date: the read of 5,000 slots is a nested loop of index
    probes, never a scan of the job table."""
    now = datetime.now(UTC)
    queue = queue_ref(policy_queue(policy))
    backend.enqueue_many(conn, Batch(queue, tuple(job(f"e{i}", f"k{i}", now) for i in range(BACKLOG))))
    conn.commit()
    conn.execute("ANALYZE pgboss.job")
    slots = json.dumps(sorted(f"k{i}" for i in range(0, 2 * SLOTS, 2)))

    row = conn.execute(
        b"EXPLAIN (FORMAT JSON) " + _query(statement, "pgboss").as_bytes(conn),
        {"slots": slots, "name": queue.name, "policy": policy},
        prepare=False,
    ).fetchone()
    assert row is not None
    (plan,) = cast("list[dict[str, Any]]", row[0])  # EXPLAIN (FORMAT JSON): one plan in a JSON array
    nodes = _nodes(plan["Plan"])
    kinds = [node["Node Type"] for node in nodes]

    assert "Seq Scan" not in kinds, kinds
    assert kinds[0] == "Nested Loop", kinds
    assert any(node["Node Type"].startswith("Index") and "Index Name" in node for node in nodes), kinds
    found = conn.execute(
        _query(statement, "pgboss"), {"slots": slots, "name": queue.name, "policy": policy}, prepare=False
    ).fetchall()
    assert len(found) == SLOTS


@pytest.mark.parametrize(
    ("policy", "statement", "holding"),
    [
        ("stately", "job_held_created_all", "created"),
        ("short", "job_held_created_all", "created"),
        ("exclusive", "job_held_live_all", "active"),
    ],
)
def test_held_slots_read_as_a_fan_out_begins_uses_the_index_not_the_finished_jobs(
    conn: psycopg.Connection[tuple[object, ...]],
    backend: PgBossBackend,
    policy: str,
    statement: str,
    holding: str,
) -> None:
    """20,000 jobs of which 500 still hold their slot, the rest completed: the one read of every held slot
    (as a fan-out begins) goes through the policy's partial index and finds exactly those 500."""
    now = datetime.now(UTC)
    queue = queue_ref(policy_queue(policy))
    backend.enqueue_many(conn, Batch(queue, tuple(job(f"e{i}", f"k{i}", now) for i in range(BACKLOG))))
    conn.execute(
        "UPDATE pgboss.job SET state = CASE WHEN singleton_key = ANY(%s) THEN %s::pgboss.job_state "
        "ELSE 'completed' END WHERE name = %s",
        ([f"k{i}" for i in range(0, 40 * 500, 40)], holding, queue.name),
    )
    conn.commit()
    conn.execute("ANALYZE pgboss.job")
    params = {"name": queue.name, "policy": policy, "limit": BACKLOG}

    row = conn.execute(
        b"EXPLAIN (FORMAT JSON) " + _query(statement, "pgboss").as_bytes(conn), params, prepare=False
    ).fetchone()
    assert row is not None
    (plan,) = cast("list[dict[str, Any]]", row[0])
    kinds = [node["Node Type"] for node in _nodes(plan["Plan"])]
    assert "Seq Scan" not in kinds, kinds
    found = conn.execute(_query(statement, "pgboss"), params, prepare=False).fetchall()
    assert sorted(slot for slot, _, _ in found) == sorted(f"k{i}" for i in range(0, 40 * 500, 40))
    assert {state for _, _, state in found} == {holding}
