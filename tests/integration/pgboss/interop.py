"""Drive the real pg-boss 12.38.0 (on the pinned Node 22, tests/interop) from the tests, and small shared helpers."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import psycopg

from scheduler.types import Accepted, BackendKind, Batch, ChunkResult, Dropped, JobSpec, QueueRef
from tests.interop.nodejs import node_binary

if TYPE_CHECKING:
    from datetime import datetime

INTEROP = Path(__file__).resolve().parents[2] / "interop"
POLICIES = ("standard", "short", "singleton", "stately", "exclusive", "key_strict_fifo")
INCIDENT_QUEUE = "generate-insight-post"
NOTIFY_QUEUE = "notify-queue"
WORKER_QUEUE = "worker-queue"
SETTINGS_QUEUE = "settings-queue"
PARTITIONED_QUEUE = "partitioned-queue"
SETTINGS = {
    "policy": "stately",
    "retryLimit": 4,
    "retryDelay": 3,
    "retryBackoff": True,
    "retryDelayMax": 30,
    "expireInSeconds": 120,
    "retentionSeconds": 3600,
    "deleteAfterSeconds": 60,
    "heartbeatSeconds": 30,
    "deadLetter": WORKER_QUEUE,
}


def policy_queue(policy: str) -> str:
    """The name of the template's queue with `policy`."""
    return f"policy-{policy.replace('_', '-')}"


TEMPLATE_QUEUES: list[dict[str, Any]] = [
    *({"name": policy_queue(p), "options": {"policy": p, "retryLimit": 2}} for p in POLICIES),
    {"name": INCIDENT_QUEUE, "options": {"policy": "stately"}},
    {"name": NOTIFY_QUEUE, "options": {"policy": "standard", "notify": True}},
    {"name": WORKER_QUEUE, "options": {"policy": "standard"}},
    {"name": SETTINGS_QUEUE, "options": SETTINGS},
    {"name": PARTITIONED_QUEUE, "options": {"policy": "stately", "partition": True}},
]


def to_url(dsn: str) -> str:
    """A libpq key=value DSN as a postgresql:// URL, the only form node-postgres reads."""
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    user = quote(str(info.get("user", "")), safe="")
    password = info.get("password")
    auth = f"{user}:{quote(str(password), safe='')}@" if password else (f"{user}@" if user else "")
    host = info.get("host", "localhost")
    port = f":{info['port']}" if info.get("port") else ""
    return f"postgresql://{auth}{host}{port}/{quote(str(info['dbname']), safe='')}"


def node(script: str, *args: str, timeout: float = 30) -> Any:
    """Run `tests/interop/<script> args…` on the pinned Node 22 (`node_binary()`, not the machine's `node`)
    and return the JSON it printed on its last line."""
    done = subprocess.run(
        [str(node_binary()), script, *args],
        cwd=INTEROP,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"node {script} failed ({done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def send_steps(dsn: str, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run steps (send, fetch, fail, complete, getQueue) through the real pg-boss; one result per step."""
    result: list[dict[str, Any]] = node("send.mjs", to_url(dsn), json.dumps(steps))
    return result


def queue_ref(name: str, policy: str | None = None, create_missing: bool = False) -> QueueRef:
    return QueueRef(
        logical=name.replace("-", "_"),
        name=name,
        backend=BackendKind.PGBOSS,
        database="queue",
        policy=policy,
        create_missing=create_missing,
    )


def job(key: str, singleton_key: str | None, start_after: datetime, **data: Any) -> JobSpec:
    return JobSpec(
        key=key, singleton_key=singleton_key, data={"entity": key, **data}, start_after=start_after
    )


def assert_exact(result: ChunkResult, batch: Batch) -> None:
    """One outcome per planned job, in order: accepted + dropped == planned."""
    assert [o.key for o in result.outcomes] == [j.key for j in batch.jobs]
    accepted = sum(isinstance(o, Accepted) for o in result.outcomes)
    dropped = sum(isinstance(o, Dropped) for o in result.outcomes)
    assert accepted + dropped == len(batch.jobs)


def without_new_ids(result: ChunkResult, new_ids: set[str]) -> tuple[Accepted | Dropped, ...]:
    """The outcomes with the ids of jobs this run inserted replaced by "" (what a prediction shows)."""
    out: list[Accepted | Dropped] = []
    for o in result.outcomes:
        if isinstance(o, Accepted):
            out.append(Accepted(key=o.key, job_id=""))
        elif o.holder_id in new_ids:
            out.append(
                Dropped(o.key, o.reason, o.singleton_key, o.policy, holder_id="", holder_state=o.holder_state)
            )
        else:
            out.append(o)
    return tuple(out)
