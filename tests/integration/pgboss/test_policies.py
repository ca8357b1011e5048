"""Every pg-boss policy: our bulk insert accepts and drops exactly what the real pg-boss send() does."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from scheduler.errors import PlanError
from scheduler.types import Accepted, Batch, Dropped, DropReason
from tests.integration.pgboss.conftest import BOTH_PATHS
from tests.integration.pgboss.interop import (
    POLICIES,
    assert_exact,
    job,
    policy_queue,
    queue_ref,
    send_steps,
    without_new_ids,
)

if TYPE_CHECKING:
    from scheduler.backends.pgboss import PgBossBackend
    from tests.conftest import MakeDatabase

# send with a key, the same key again, activate one with a real fetch, send again twice, fail the active
# job (→ retry), send again, then a different key.
SCENARIO: list[dict[str, Any]] = [
    {"op": "send", "key": "k1"},
    {"op": "send", "key": "k1"},
    {"op": "fetch"},
    {"op": "send", "key": "k1"},
    {"op": "send", "key": "k1"},
    {"op": "fail"},
    {"op": "send", "key": "k1"},
    {"op": "send", "key": "k2"},
]


def real_steps(queue: str, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The scenario's steps in send.mjs form."""
    out: list[dict[str, Any]] = []
    for i, step in enumerate(steps):
        if step["op"] == "send":
            out.append(
                {"op": "send", "queue": queue, "data": {"step": i}, "options": {"singletonKey": step["key"]}}
            )
        elif step["op"] == "fetch":
            out.append({"op": "fetch", "queue": queue})
        else:
            out.append({"op": "fail", "queue": queue, "ids": "fetched"})
    return out


def summary(result: dict[str, Any]) -> str:
    """One step's result as "id", "null", "fetched n" or "failed n"."""
    if "id" in result:
        return "null" if result["id"] is None else "id"
    if "ids" in result:
        return f"fetched {len(result['ids'])}"
    return f"failed {result['affected']}"


@BOTH_PATHS
@pytest.mark.parametrize("policy", POLICIES)
def test_enqueue_many_matches_real_send(
    policy: str, make_database: MakeDatabase, pgboss_template: str, backend: PgBossBackend
) -> None:
    """The scenario gives the same accepted/dropped sequence through enqueue_many as through pg-boss send()."""
    name = policy_queue(policy)
    queue = queue_ref(name)
    real_dsn = make_database(template=pgboss_template)
    ours_dsn = make_database(template=pgboss_template)
    real = send_steps(real_dsn, real_steps(name, SCENARIO))

    ours: list[dict[str, Any]] = []
    fetched: list[str] = []
    with psycopg.connect(ours_dsn) as conn:
        for i, step in enumerate(SCENARIO):
            if step["op"] == "send":
                batch = Batch(queue, (job(f"s{i}", step["key"], datetime.now(UTC), step=i),))
                result = backend.enqueue_many(conn, batch)
                conn.commit()
                assert_exact(result, batch)
                outcome = result.outcomes[0]
                if isinstance(outcome, Dropped):
                    assert (outcome.reason, outcome.policy) == (DropReason.POLICY_CONFLICT, policy)
                    assert outcome.holder_id is not None
                ours.append({"id": outcome.job_id if isinstance(outcome, Accepted) else None})
            elif step["op"] == "fetch":
                (fetch,) = send_steps(ours_dsn, [{"op": "fetch", "queue": name}])
                fetched = fetch["ids"]
                ours.append(fetch)
            else:
                ours.extend(send_steps(ours_dsn, [{"op": "fail", "queue": name, "ids": fetched}]))

    assert [summary(r) for r in ours] == [summary(r) for r in real]


@BOTH_PATHS
@pytest.mark.parametrize("policy", POLICIES)
def test_prediction_equals_enqueue(
    policy: str, conn: psycopg.Connection[tuple[object, ...]], pgboss_dsn: str, backend: PgBossBackend
) -> None:
    """Across two batches, predict_many reports exactly what enqueue_many then does (new ids shown as "")."""
    name = policy_queue(policy)
    queue = queue_ref(name)
    # Existing jobs from the real pg-boss: k2 active (fetched), k1 and k3 queued.
    send_steps(
        pgboss_dsn,
        [
            {"op": "send", "queue": name, "options": {"singletonKey": "k2"}},
            {"op": "fetch", "queue": name},
            {"op": "send", "queue": name, "options": {"singletonKey": "k1"}},
            {"op": "send", "queue": name, "options": {"singletonKey": "k3"}},
        ],
    )
    now = datetime.now(UTC)
    keyless = policy != "key_strict_fifo"
    first = Batch(queue, (job("a", "k1", now), job("b", "k2", now), job("c", "k4", now)))
    second = Batch(
        queue,
        (
            job("d", "k5", now),
            job("e", "k6", now),
            *((job("f", None, now), job("g", None, now)) if keyless else ()),
        ),
    )
    placed: set[str] = set()
    predicted = [backend.predict_many(conn, b, placed).outcomes for b in (first, second)]
    results = [backend.enqueue_many(conn, b) for b in (first, second)]
    conn.commit()

    for result, batch in zip(results, (first, second), strict=True):
        assert_exact(result, batch)
    new_ids = {o.job_id for r in results for o in r.outcomes if isinstance(o, Accepted)}
    assert [without_new_ids(r, new_ids) for r in results] == predicted


def test_real_send_without_key_throws_on_key_strict_fifo(pgboss_dsn: str) -> None:
    """pg-boss's own send() throws (rather than returning null) on a key_strict_fifo queue without a key."""
    (result,) = send_steps(pgboss_dsn, [{"op": "send", "queue": policy_queue("key_strict_fifo")}])
    assert "error" in result
    assert "singletonKey" in result["error"]


@BOTH_PATHS
@pytest.mark.parametrize("method", ["enqueue_many", "predict_many"])
def test_key_strict_fifo_without_key_is_rejected(
    method: str, conn: psycopg.Connection[tuple[object, ...]], backend: PgBossBackend
) -> None:
    """A job without a singleton key on a key_strict_fifo queue is refused before any write, with the fix."""
    queue = queue_ref(policy_queue("key_strict_fifo"))
    now = datetime.now(UTC)
    batch = Batch(queue, (job("a", "k1", now), job("b", None, now), job("c", None, now)))
    call = (
        (lambda: backend.enqueue_many(conn, batch))
        if method == "enqueue_many"
        else (lambda: backend.predict_many(conn, batch, set()))
    )
    with pytest.raises(PlanError) as caught:
        call()
    assert str(caught.value) == (
        'Queue "policy-key-strict-fifo" (queue `policy_key_strict_fifo`) has policy key_strict_fifo, which '
        "needs a singleton key on every job; 2 job(s) have none (entities: b, c). "
        'Set `singleton_key:` on the schedule, e.g. "{key}".'
    )
    assert conn.execute("SELECT count(*) FROM pgboss.job").fetchone() == (0,)
