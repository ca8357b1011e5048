"""A cohort's json/jsonb object payload crosses the scheduler as text (`JsonText`), not parsed and
re-encoded per job: the job row holds what the cohort returned, `{data.…}` templates and the plan's checks
still see an object, and a non-object payload is still refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import psycopg
import pytest

from scheduler.errors import PlanError
from scheduler.fanout import fire
from scheduler.types import JsonText
from tests.integration.fanout.conftest import load_fanout

if TYPE_CHECKING:
    from pathlib import Path

TICK = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
SCHEDULE = """\
schedules:
  everyone:
    cron: "0 * * * *"
    cohort:
      sql: >-
        select i as key, {data} as data from generate_series(1, 3000) as i
    queue: bulk
    singleton_key: "n:{{data.org.id}}"
"""
DATA = (
    """jsonb_build_object('org', jsonb_build_object('id', i), 'big', 12345678901234567890.5, 'u', 'é\\n"')"""
)


def test_json_text_is_a_mapping_equal_to_its_object() -> None:
    text = JsonText('{"a": [1, 2], "b": {"c": null}}')
    parsed: dict[str, object] = {"a": [1, 2], "b": {"c": None}}
    assert text == parsed
    assert parsed == text  # dict == JsonText falls back to the mapping comparison
    assert dict(text) == parsed
    assert "a" in text
    assert "z" not in text
    assert len(text) == 2
    assert text["b"] == {"c": None}


@pytest.mark.parametrize("data_type", ["jsonb", "json"])
def test_payload_rows_equal_the_cohort_json(tmp_path: Path, queues_db: str, data_type: str) -> None:
    """Above the COPY threshold (3,000 rows) every job's data equals the cohort's own value, compared as
    jsonb in the database; the singleton key came from a nested data field."""
    data = DATA if data_type == "jsonb" else DATA.replace("jsonb_build_object", "json_build_object")
    fanout = load_fanout(tmp_path, SCHEDULE.format(data=data), _environ(queues_db), detail_limit=0)
    report = fire(fanout, "everyone", TICK).report
    assert (report.planned, report.accepted) == (3000, 3000)
    with psycopg.connect(queues_db) as db:
        wrong = db.execute(
            f"""SELECT count(*) FROM pgboss.job j
            JOIN generate_series(1, 3000) AS i ON j.singleton_key = 'n:' || i
            WHERE j.name = 'bulk' AND j.data IS DISTINCT FROM ({DATA})"""
        ).fetchone()
    assert wrong == (0,)


def test_a_non_object_payload_is_still_refused(tmp_path: Path, queues_db: str) -> None:
    schedule = SCHEDULE.format(data="jsonb_build_array(i)").replace("data.org.id", "key")
    fanout = load_fanout(tmp_path, schedule, _environ(queues_db))
    with pytest.raises(PlanError, match="must be a JSON object"):
        fire(fanout, "everyone", TICK)
    with psycopg.connect(queues_db) as db:
        assert db.execute("SELECT count(*) FROM pgboss.job WHERE name = 'bulk'").fetchone() == (0,)


def _environ(queues_db: str) -> dict[str, str]:
    return {"APP_DATABASE_URL": queues_db, "QUEUE_DATABASE_URL": queues_db}
