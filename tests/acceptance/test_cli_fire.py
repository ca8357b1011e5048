"""`scheduler fire` on a real queue database: the seed incident, a missing queue, the fan-out log line."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import psycopg

from tests.acceptance.cli import scheduler

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path

AT = "2026-11-24T14:00:00Z"
ENTITIES = [f"org-{i:02d}" for i in range(1, 14)]
CONFIG = """\
version: 1
databases:
  app: {{ dsn_env: APP_DATABASE_URL }}
  queue: {{ dsn_env: QUEUE_DATABASE_URL }}
queues:
  insights: {{ name: generate-insight-post, backend: pgboss, policy: stately }}
  bulk: {{ name: bulk, backend: pgboss, policy: standard }}
  nope: {{ name: no-such-queue, backend: pgboss, policy: standard }}
  fresh: {{ name: fresh-queue, backend: pgboss, policy: singleton, create_missing: true }}
lanes:
  half-missing: {{ default: bulk, routes: {{ x: nope }} }}
schedules:
  digest:
    cron: "0 * * * *"
    cohort:
      static: [{rows}]
    {target}
    stagger: {{ window: 60m, strategy: spread }}
{extra}"""


def write(directory: Path, target: str = "queue: insights", extra: str = "", rows: str = "") -> Path:
    path = directory / "schedules.yaml"
    rows = rows or ", ".join(f"{{ key: {k} }}" for k in ENTITIES)
    path.write_text(CONFIG.format(rows=rows, target=target, extra=extra))
    return path


def fire(directory: Path, dsn: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return scheduler(
        "fire",
        "digest",
        "--at",
        AT,
        *args,
        "schedules.yaml",
        cwd=directory,
        APP_DATABASE_URL=dsn,
        QUEUE_DATABASE_URL=dsn,
        **env,
    )


def report(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def jobs(dsn: str, queue: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM pgboss.job WHERE name = %s", (queue,)).fetchone()
    assert row is not None
    return int(row[0])


def test_the_seed_incident_is_predicted_reported_and_fixed(tmp_path: Path, queues_db: str) -> None:
    """13 keyless jobs into a stately queue: --dry predicts 1 accepted and 12 policy_conflict, the real fire
    reports exactly that with the accepted job as every drop's holder; with `insight:{key}` all 13 go in,
    and firing the same tick again drops all 13, each naming the job holding its key."""
    write(tmp_path)

    dry = fire(tmp_path, queues_db, "--dry", "--json")
    real = fire(tmp_path, queues_db, "--json")

    assert (dry.returncode, real.returncode) == (0, 0)
    predicted, done = report(dry)["queues"]["insights"], report(real)["queues"]["insights"]
    assert (done["planned"], done["accepted"], done["dropped"]) == (13, 1, 12)
    assert done["dropped_by_reason"] == predicted["dropped_by_reason"] == {"policy_conflict": 12}
    assert (predicted["planned"], predicted["accepted"], predicted["dropped"]) == (13, 1, 12)
    [accepted] = done["accepted_jobs"]
    assert [j["key"] for j in predicted["accepted_jobs"]] == [accepted["key"]]
    assert sorted(d["key"] for d in done["dropped_jobs"]) == sorted(
        d["key"] for d in predicted["dropped_jobs"]
    )
    assert sorted([accepted["key"], *(d["key"] for d in done["dropped_jobs"])]) == ENTITIES
    assert {(d["reason"], d["policy"], d["holder_id"], d["holder_state"]) for d in done["dropped_jobs"]} == {
        ("policy_conflict", "stately", accepted["job_id"], "created")
    }
    assert jobs(queues_db, "generate-insight-post") == 1

    write(tmp_path, extra='    singleton_key: "insight:{key}"\n')
    keyed = report(fire(tmp_path, queues_db, "--json"))["queues"]["insights"]
    again = fire(tmp_path, queues_db, "--json")

    assert (keyed["accepted"], keyed["dropped"]) == (13, 0)
    holders = {j["key"]: j["job_id"] for j in keyed["accepted_jobs"]}
    assert sorted(holders) == ENTITIES
    repeat = report(again)["queues"]["insights"]
    assert (again.returncode, repeat["accepted"], repeat["dropped"]) == (0, 0, 13)
    assert {d["key"]: (d["reason"], d["singleton_key"], d["holder_id"]) for d in repeat["dropped_jobs"]} == {
        k: ("policy_conflict", f"insight:{k}", holders[k]) for k in ENTITIES
    }
    assert jobs(queues_db, "generate-insight-post") == 14


def test_a_missing_queue_writes_nothing_of_the_tick_and_exits_1(tmp_path: Path, queues_db: str) -> None:
    """A lane whose second queue does not exist (create_missing false): every entity, including those
    routed to the existing queue, is reported queue_missing, no row is written, exit 1."""
    rows = ", ".join(f"{{ key: k{i}, source: {'x' if i % 2 else 'y'} }}" for i in range(6))
    write(tmp_path, target="lane: half-missing", rows=rows)

    done = fire(tmp_path, queues_db, "--json")

    assert done.returncode == 1
    doc = report(done)
    assert doc["failure"] == "queue 'no-such-queue' (pgboss, logical 'nope') does not exist"
    assert (doc["planned"], doc["accepted"], doc["dropped"]) == (6, 0, 6)
    assert doc["dropped_by_reason"] == {"queue_missing": 6}
    dropped = [d for q in doc["queues"].values() for d in q["dropped_jobs"]]
    assert sorted(d["key"] for d in dropped) == [f"k{i}" for i in range(6)]
    with psycopg.connect(queues_db) as conn:
        assert conn.execute("SELECT count(*) FROM pgboss.job").fetchone() == (0,)


def test_create_missing_creates_the_queue_with_its_declared_policy(tmp_path: Path, queues_db: str) -> None:
    """A missing queue with create_missing true is created with policy singleton and every job goes in."""
    write(tmp_path, target="queue: fresh", extra='    singleton_key: "f:{key}"\n')

    done = fire(tmp_path, queues_db, "--json")

    assert done.returncode == 0
    fresh = report(done)["queues"]["fresh"]
    assert (fresh["accepted"], fresh["dropped"]) == (13, 0)
    with psycopg.connect(queues_db) as conn:
        assert conn.execute("SELECT policy FROM pgboss.queue WHERE name = 'fresh-queue'").fetchone() == (
            "singleton",
        )
    assert jobs(queues_db, "fresh-queue") == 13


def log_events(done: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]


def test_unexpected_drops_log_fanout_dropped_at_warning(tmp_path: Path, queues_db: str) -> None:
    """The keyless incident logs one JSON line `fanout_dropped` at warning with the drop counts."""
    write(tmp_path)

    done = fire(tmp_path, queues_db, SCHEDULER_LOG_FORMAT="json")

    assert done.returncode == 0
    [line] = log_events(done)
    assert (line["event"], line["level"]) == ("fanout_dropped", "warning")
    assert (line["schedule"], line["planned"], line["accepted"], line["dropped"]) == ("digest", 13, 1, 12)
    assert line["dropped_by_reason"] == {"policy_conflict": 12}
    assert line["queues"] == {"generate-insight-post": {"accepted": 1, "dropped": 12}}


def test_expected_drops_log_fanout_enqueued_at_info(tmp_path: Path, queues_db: str) -> None:
    """When the schedule lists policy_conflict in expected_drops the same fan-out logs `fanout_enqueued` at info."""
    write(tmp_path, extra="    expected_drops: [policy_conflict]\n")

    done = fire(tmp_path, queues_db, SCHEDULER_LOG_FORMAT="json")

    assert done.returncode == 0
    [line] = log_events(done)
    assert (line["event"], line["level"]) == ("fanout_enqueued", "info")
    assert (line["accepted"], line["dropped"], line["dropped_by_reason"]) == (1, 12, {"policy_conflict": 12})
