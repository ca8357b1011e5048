"""Settings from `SCHEDULER_*` variables, the help listing, and the scaled test clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.runtime.settings import Clock, Settings, settings_help


def test_settings_read_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """`SCHEDULER_*` variables set the fields; durations use the schedule files' syntax."""
    monkeypatch.setenv("SCHEDULER_CONFIG", "a.yaml:dir")
    monkeypatch.setenv("SCHEDULER_CATCH_UP_POLL", "1m30s")
    monkeypatch.setenv("SCHEDULER_LOG_FORMAT", "json")
    s = Settings()
    assert (s.config, s.catch_up_poll, s.log_format) == (
        [Path("a.yaml"), Path("dir")],
        timedelta(seconds=90),
        "json",
    )


def test_help_lists_every_setting_with_its_variable() -> None:
    """`scheduler run --help` names the variable of every setting."""
    text = settings_help()
    assert all(f"SCHEDULER_{name.upper()}" in text for name in Settings.model_fields)


def test_replica_id_defaults_to_host_and_pid(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default replica id ends with this process's pid."""
    monkeypatch.delenv("SCHEDULER_REPLICA_ID", raising=False)
    import os

    assert Settings().replica_id.endswith(f"-{os.getpid()}")


def test_scaled_clock_round_trips() -> None:
    """A clock 60 times faster maps one real second to one minute and back."""
    clock = Clock(speed=60, anchor=1_000_000.0)
    assert clock.to_schedule(1_000_001.0) == datetime.fromtimestamp(1_000_060.0, UTC)
    assert clock.to_real(datetime.fromtimestamp(1_000_060.0, UTC)) == pytest.approx(1_000_001.0)
