"""`scheduler fire` on a real queue database: the seed incident, a missing queue, the fan-out log line."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg

from scheduler.runtime.catchup import SkipReason
from scheduler.runtime.ledger import Ledger
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
    reports exactly that with the accepted job as every drop's holder; with `insight:{key}` all 13 go in
    (--force: the ledger has the tick done), and firing the same tick again drops all 13, each naming the
    job holding its key."""
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
    keyed = report(fire(tmp_path, queues_db, "--json", "--force"))["queues"]["insights"]
    again = fire(tmp_path, queues_db, "--json", "--force")

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


def ledger_rows(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT tick, outcome, fired_by, attempts, accepted, dropped FROM scheduler.tick ORDER BY tick"
        ).fetchall()


def test_fire_claims_the_tick_in_the_ledger_and_refuses_it_twice(tmp_path: Path, queues_db: str) -> None:
    """A fire is recorded in the ledger as `manual` with its counts, and `status` shows it; the same tick
    again is refused in one line (exit 1, nothing enqueued) naming who fired it and --force; --force fans
    it out again (the singleton keys refuse all 13) and counts a second attempt; --dry writes nothing."""
    write(tmp_path, extra='    singleton_key: "insight:{key}"\n')

    first = fire(tmp_path, queues_db)
    refused = fire(tmp_path, queues_db)
    predicted = fire(tmp_path, queues_db, "--dry")

    assert first.returncode == 0, first.stderr
    assert ledger_rows(queues_db)[0][1:] == ("done", "manual", 1, 13, 0)
    assert refused.returncode == 1
    assert refused.stdout == ""
    [line] = refused.stderr.splitlines()
    assert "tick 2026-11-24T14:00:00+00:00 of schedule 'digest' was already fanned out (manual, by " in line
    assert "13 accepted, 0 dropped); nothing enqueued. --force fans it out again" in line
    assert predicted.returncode == 0
    assert jobs(queues_db, "generate-insight-post") == 13

    forced = report(fire(tmp_path, queues_db, "--force", "--json"))

    assert (forced["accepted"], forced["dropped"]) == (0, 13)
    assert ledger_rows(queues_db)[0][1:] == ("done", "manual", 2, 0, 13)
    status = scheduler(
        "status", "schedules.yaml", cwd=tmp_path, QUEUE_DATABASE_URL=queues_db, APP_DATABASE_URL=queues_db
    )
    assert status.returncode == 0, status.stderr
    row = next(line.split() for line in status.stdout.splitlines() if line.strip().startswith("2026-11-24"))
    assert row[:6] == ["2026-11-24T14:00:00+00:00", "done", "manual", "0", "13", "2"]


def test_a_tick_the_sidecar_fanned_out_is_refused(tmp_path: Path, queues_db: str) -> None:
    """A tick the ledger has as done by the sidecar: fire says so (scheduled, its replica, its counts) and
    exits 1; the jobs stay the sidecar's."""
    write(tmp_path, extra='    singleton_key: "insight:{key}"\n')
    tick = datetime.fromisoformat(AT.replace("Z", "+00:00"))
    with psycopg.connect(queues_db) as conn:
        ledger = Ledger()
        ledger.migrate(conn)
        with conn.transaction():
            ledger.claim(conn, "digest", tick, "replica-7", tick)

    done = fire(tmp_path, queues_db)

    assert done.returncode == 1
    assert (
        "was already fanned out (scheduled, by replica-7, at 2026-11-24T14:00:00+00:00: 0 accepted"
        in done.stderr
    )
    assert jobs(queues_db, "generate-insight-post") == 0


def test_a_tick_the_sidecar_skipped_is_fired_without_force(tmp_path: Path, queues_db: str) -> None:
    """A skipped tick never fanned out: fire claims it (backfill), and the ledger row becomes manual, done."""
    write(tmp_path, extra='    singleton_key: "insight:{key}"\n')
    tick = datetime.fromisoformat(AT.replace("Z", "+00:00"))
    with psycopg.connect(queues_db) as conn:
        ledger = Ledger()
        ledger.migrate(conn)
        with conn.transaction():
            ledger.skip_many(conn, "digest", [(tick, SkipReason.TOO_OLD)], "replica-7", tick)

    done = fire(tmp_path, queues_db)

    assert done.returncode == 0, done.stderr
    assert ledger_rows(queues_db) == [(tick, "done", "manual", 1, 13, 0)]


def test_a_tick_in_flight_elsewhere_is_refused_without_waiting(tmp_path: Path, queues_db: str) -> None:
    """While another transaction holds the tick's lock (a replica fanning it out), fire exits 1 at once."""
    write(tmp_path, extra='    singleton_key: "insight:{key}"\n')
    tick = datetime.fromisoformat(AT.replace("Z", "+00:00"))
    with psycopg.connect(queues_db) as conn:
        ledger = Ledger()
        ledger.migrate(conn)
        with conn.transaction():
            assert ledger.try_lock(conn, "digest", tick)
            done = fire(tmp_path, queues_db)

    assert done.returncode == 1
    assert "is being fanned out right now" in done.stderr
    assert ledger_rows(queues_db) == []


def test_a_failed_fire_leaves_the_ledger_as_it_was(tmp_path: Path, queues_db: str) -> None:
    """A missing queue: exit 1, and no ledger row (the claim rolled back with the jobs)."""
    write(tmp_path, target="queue: nope")

    done = fire(tmp_path, queues_db)

    assert done.returncode == 1
    assert ledger_rows(queues_db) == []
