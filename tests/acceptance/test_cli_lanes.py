"""`scheduler lanes` on the example schedules, as a user runs it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from tests.acceptance.cli import REPO_SCHEDULES, scheduler

if TYPE_CHECKING:
    from pathlib import Path


def test_lanes_prints_each_source_and_the_default(tmp_path: Path) -> None:
    """The chat lane lists its routed sources and its default, with real names and backends."""
    done = scheduler("lanes", str(REPO_SCHEDULES), cwd=tmp_path)
    assert (done.returncode, done.stdout.splitlines()) == (
        0,
        [
            "lane chat-assistant:",
            "  data_change      -> chat-automation (generate-chat-assistant-response-automation, pgboss)",
            "  scheduled_report -> chat-automation (generate-chat-assistant-response-automation, pgboss)",
            "  (default)        -> chat-ui (generate-chat-assistant-response-ui, pgboss)",
            "  used by: schedule chat-scheduled-reports, watcher chat-generating",
        ],
    )


def test_lanes_json_maps_sources_to_queues(tmp_path: Path) -> None:
    """--json gives source → queue with the real name and backend, and the default."""
    done = scheduler("lanes", "--json", str(REPO_SCHEDULES), cwd=tmp_path)
    lane = json.loads(done.stdout)["chat-assistant"]
    assert (lane["routes"]["scheduled_report"], lane["default"]) == (
        {
            "queue": "chat-automation",
            "name": "generate-chat-assistant-response-automation",
            "backend": "pgboss",
        },
        {"queue": "chat-ui", "name": "generate-chat-assistant-response-ui", "backend": "pgboss"},
    )
