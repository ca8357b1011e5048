"""`scheduler dry-run` says how many drops it does not list, predicts `invalid_row` drops exactly as `fire`
then reports them (never crashing on such rows), and predicts a queue still to be created as fire creates it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import psycopg

from tests.acceptance.cli import scheduler

if TYPE_CHECKING:
    from pathlib import Path

CONFIG = """\
version: 1
databases:
  app: {{ dsn_env: APP_DATABASE_URL }}
  queue: {{ dsn_env: QUEUE_DATABASE_URL }}
queues:
  insights: {{ name: generate-insight-post, backend: pgboss, database: queue, policy: stately }}
  records: {{ name: records, backend: procrastinate, database: queue, task: interop.record }}
  fresh: {{ name: fresh-queue, backend: pgboss, database: queue, policy: {fresh_policy}, create_missing: true }}
schedules:
  digest:
    cron: "0 14 * * *"
    cohort:
      {cohort}
    queue: {queue}
{extra}"""
BAD_ROWS = """
CREATE TABLE app_json (key text, data json);
INSERT INTO app_json VALUES
  ('good-1', '{"n": 1}'), ('nul', '{"n": "a\\u0000b"}'), ('good-2', '{"n": 2}'),
  ('surrogate', '{"n": "\\udc00"}'), ('long', json_build_object('n', (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 90) i)));
"""


def write(directory: Path, **fields: str) -> None:
    values = {"fresh_policy": "stately", "cohort": "", "queue": "insights", "extra": "", **fields}
    (directory / "schedules.yaml").write_text(CONFIG.format(**values))


def run(directory: Path, dsn: str, command: str, *args: str) -> Any:
    at = (
        ("--at", "2026-11-24T14:00:00+00:00")
        if command == "fire"
        else ("--hour", "14", "--date", "2026-11-24")
    )
    name = ("digest",) if command == "fire" else ()
    return scheduler(
        command,
        *name,
        *at,
        *args,
        "schedules.yaml",
        cwd=directory,
        APP_DATABASE_URL=dsn,
        QUEUE_DATABASE_URL=dsn,
    )


def tick_of(done: Any) -> dict[str, Any]:
    (schedule,) = json.loads(done.stdout)["schedules"]
    (tick,) = schedule["ticks"]
    assert isinstance(tick, dict)
    return tick


KEYLESS = "static: [" + ", ".join(f"{{ key: e{i:02d} }}" for i in range(12)) + "]"
"""Twelve keyless entities into a stately queue: one job, eleven drops."""


def test_text_says_how_many_drops_it_does_not_list(tmp_path: Path, queues_db: str) -> None:
    """Eleven predicted drops, ten listed: the text ends the list with '… and 1 more'."""
    write(tmp_path, cohort=KEYLESS)
    done = run(tmp_path, queues_db, "dry-run")
    assert "Traceback" not in done.stderr
    listed = [line for line in done.stdout.splitlines() if line.strip().startswith("dropped ")]
    assert len(listed) == 10
    assert "      … and 1 more" in done.stdout.splitlines()
    assert "1 accepted, 11 dropped (policy_conflict 11)" in done.stdout


def test_json_gives_the_total_and_what_it_did_not_list(tmp_path: Path, queues_db: str) -> None:
    """With --drops 3, --json lists three drops and says eight more were not listed, of eleven."""
    write(tmp_path, cohort=KEYLESS)
    done = run(tmp_path, queues_db, "dry-run", "--drops", "3", "--json")
    queue = tick_of(done)["queues"]["insights"]
    assert (queue["dropped"], len(queue["dropped_keys"]), queue["dropped_not_listed"]) == (11, 3, 8)
    text = run(tmp_path, queues_db, "dry-run", "--drops", "3")
    assert "      … and 8 more" in text.stdout.splitlines()


def test_invalid_rows_are_predicted_as_fire_then_reports_them(tmp_path: Path, queues_db: str) -> None:
    """A cohort with a NUL, a lone surrogate and a key past the index: dry-run (text and --json) names each
    `invalid_row` with its reason, exit 0, and fire then drops the same three and enqueues the rest."""
    with psycopg.connect(queues_db, autocommit=True) as conn:
        conn.execute(BAD_ROWS)
    write(tmp_path, cohort='sql: "select key, data from app_json"', extra='    singleton_key: "k:{data.n}"\n')

    text = run(tmp_path, queues_db, "dry-run")
    assert text.returncode == 0, text.stderr
    assert "3 accepted" not in text.stdout
    assert "2 accepted, 3 dropped (invalid_row 3)" in text.stdout
    assert "dropped nul: invalid_row (the singleton key 'k:a\\x00b' holds a NUL character" in text.stdout
    assert (
        "dropped surrogate: invalid_row (the singleton key 'k:\\udc00' holds a lone surrogate" in text.stdout
    )
    assert "dropped long: invalid_row (the singleton key 'k:" in text.stdout

    predicted = tick_of(run(tmp_path, queues_db, "dry-run", "--json"))["queues"]["insights"]
    fired = run(tmp_path, queues_db, "fire", "--json")
    assert fired.returncode == 0, fired.stderr
    done = json.loads(fired.stdout)["queues"]["insights"]
    assert (predicted["accepted"], predicted["dropped_by_reason"]) == (
        done["accepted"],
        done["dropped_by_reason"],
    )
    assert done["dropped_by_reason"] == {"invalid_row": 3}
    assert sorted((d["key"], d["detail"]) for d in predicted["dropped_keys"]) == sorted(
        (d["key"], d["detail"]) for d in done["dropped_jobs"]
    )
    with psycopg.connect(queues_db) as conn:
        rows = conn.execute("SELECT singleton_key FROM pgboss.job ORDER BY 1").fetchall()
    assert rows == [("k:1",), ("k:2",)]


def test_a_queue_still_to_be_created_is_predicted_as_fire_creates_it(tmp_path: Path, queues_db: str) -> None:
    """A missing stately queue with create_missing: dry-run predicts one job and eleven drops for twelve
    keyless entities, and fire, which creates the queue, reports exactly that."""
    write(tmp_path, cohort=KEYLESS, queue="fresh")
    predicted = tick_of(run(tmp_path, queues_db, "dry-run", "--json"))
    fired = run(tmp_path, queues_db, "fire", "--json")
    done = json.loads(fired.stdout)["queues"]["fresh"]
    queue = predicted["queues"]["fresh"]
    assert (queue["exists"], queue["live_policy"]) == (False, "stately")
    assert (queue["accepted"], queue["dropped_by_reason"]) == (1, {"policy_conflict": 11})
    assert (done["accepted"], done["dropped_by_reason"]) == (1, {"policy_conflict": 11})


def test_a_new_key_strict_fifo_queue_without_keys_fails_in_dry_run_as_in_fire(
    tmp_path: Path, queues_db: str
) -> None:
    """key_strict_fifo needs a singleton key on every job: fire into the queue it would create fails, and
    dry-run predicts that failure with the same message instead of predicting jobs."""
    write(tmp_path, cohort=KEYLESS, queue="fresh", fresh_policy="key_strict_fifo")
    dry = run(tmp_path, queues_db, "dry-run", "--json")
    fired = run(tmp_path, queues_db, "fire")
    assert "Traceback" not in dry.stderr + fired.stderr
    error = tick_of(dry)["error"]
    assert (
        "has policy key_strict_fifo, which needs a singleton key on every job; 12 job(s) have none" in error
    )
    assert fired.returncode == 1
    assert error in fired.stdout + fired.stderr
