"""Process settings of `scheduler run`: `SCHEDULER_*` environment variables, or an optional `.env` file.

The schedule files say *what* runs; these settings say *how this process* runs it. Database DSNs are not
settings: they come from the environment variables the files name (`dsn_env`).

Settings whose name starts with `test_` exist so acceptance tests can scale the clock and pause a fan-out
between its claim and its commit; production leaves them unset.
"""

from __future__ import annotations

import os
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from scheduler.config.models import Duration  # noqa: TC001 -- pydantic-settings reads annotations at run time

ENV_PREFIX = "SCHEDULER_"


def default_replica_id() -> str:
    """`<hostname>-<pid>`: unique per process on a host, readable in the ledger."""
    return f"{socket.gethostname()}-{os.getpid()}"


class Settings(BaseSettings):
    """Settings of the long-lived sidecar. Each field is read from `SCHEDULER_<FIELD>`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    config: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Schedule files or directories, colon-separated (the command's PATHS take precedence).",
    )
    sentry_dsn: SecretStr | None = Field(None, description="Sentry DSN; Sentry stays off when unset.")
    sentry_environment: str | None = Field(None, description="Sentry environment name (e.g. production).")
    health_host: str = Field("0.0.0.0", description="Address the health/metrics HTTP server binds to.")
    health_port: int = Field(
        8080, ge=0, le=65535, description="Port of /healthz, /readyz, /metrics; 0 picks a free port (logged)."
    )
    log_format: Literal["text", "json"] = Field("text", description="Log lines as key=value text or JSON.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Lowest level logged."
    )
    replica_id: str = Field(
        default_factory=default_replica_id, description="Name of this replica in the ledger."
    )
    ledger_schema: str = Field(
        "scheduler", pattern=r"^[a-z_][a-z0-9_]*$", description="Schema of the ledger in each queue database."
    )
    catch_up_poll: Duration = Field(
        timedelta(seconds=30),
        description="How often the ledger is scanned for missed, failed or abandoned ticks.",
    )
    on_time: Duration = Field(
        timedelta(seconds=60),
        description="A tick fired within this long after its instant is on time, not missed (catch-up policy).",
    )
    retry_backoff: Duration = Field(timedelta(seconds=10), description="Wait before retrying a failed tick.")
    retry_backoff_max: Duration = Field(
        timedelta(minutes=5), description="Longest wait between retries (the wait doubles per attempt)."
    )
    grace_period: Duration = Field(
        timedelta(seconds=30), description="On SIGTERM, how long the tick in flight may take to finish."
    )
    chunk_size: int = Field(
        5000,
        ge=1,
        description="Jobs per planned chunk (and per statement where chunks cannot share one COPY).",
    )
    connect_timeout: int = Field(5, ge=1, description="Seconds to wait for a database connection.")
    readiness_interval: Duration = Field(
        timedelta(seconds=5),
        description="How often /readyz's database checks run (one background thread; requests read the "
        "latest result, so any request rate costs one check per interval).",
    )
    allow_empty_reload: bool = Field(
        False,
        description="Accept a reload that leaves no enabled schedule while some run (an emptied file or "
        "directory); refused by default, and the running configuration stays.",
    )
    test_clock_speed: float = Field(
        1.0, gt=0, description="Testing: schedule time runs this many times faster than real time."
    )
    test_clock_anchor: float | None = Field(
        None, description="Testing: Unix time at which schedule time equals real time (default: start)."
    )
    test_pause_before_commit: float = Field(
        0.0, ge=0, description="Testing: seconds to wait between a tick's claim and its commit."
    )

    @field_validator("readiness_interval")
    @classmethod
    def _not_a_busy_loop(cls, value: timedelta) -> timedelta:
        if value < timedelta(milliseconds=100):
            raise ValueError("must be at least 100ms (the readiness check would spin)")
        return value

    @field_validator("config", mode="before")
    @classmethod
    def _split_paths(cls, value: object) -> object:
        if isinstance(value, str):
            return [Path(p.strip()) for p in value.split(os.pathsep) if p.strip()]
        return value


def settings_help() -> str:
    """One line per setting: variable, default, description (for `scheduler run --help`)."""
    lines = ["settings (environment variables, or a .env file in the working directory):"]
    for name, info in Settings.model_fields.items():
        default = info.get_default(call_default_factory=False)
        shown = "" if default is None or info.default_factory is not None else f" (default: {_show(default)})"
        if name == "replica_id":
            shown = " (default: hostname-pid)"
        lines.append(f"  {ENV_PREFIX}{name.upper():<28} {info.description}{shown}")
    return "\n".join(lines)


def _show(value: object) -> str:
    if isinstance(value, timedelta):
        from scheduler.config.models import format_duration

        return format_duration(value)
    return str(value)


class Clock:
    """The sidecar's only source of "now" (UTC). With `speed` != 1, schedule time runs faster than real time,
    anchored so that every replica started with the same anchor agrees on it.
    """

    def __init__(self, speed: float = 1.0, anchor: float | None = None) -> None:
        self.speed = speed
        self.anchor = time.time() if anchor is None else anchor

    def now(self) -> datetime:
        return self.to_schedule(time.time())

    def wall_now(self) -> datetime:
        """Real time (UTC), whatever the speed: for what operators read next to their own clocks (when a
        configuration was loaded or a reload failed, a replica's heartbeat), never for ticks."""
        return datetime.fromtimestamp(time.time(), UTC)

    def to_schedule(self, real: float) -> datetime:
        """Schedule time at Unix time `real`."""
        return datetime.fromtimestamp(self.anchor + (real - self.anchor) * self.speed, UTC)

    def to_real(self, instant: datetime) -> float:
        """Unix time at which schedule time reaches `instant`."""
        return self.anchor + (instant.timestamp() - self.anchor) / self.speed

    def real_seconds(self, span: timedelta) -> float:
        """How many real seconds a span of schedule time takes."""
        return span.total_seconds() / self.speed
