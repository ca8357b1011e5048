"""Run the installed `scheduler` command in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCHEDULER = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "scheduler"
REPO_SCHEDULES = Path(__file__).resolve().parents[2] / "schedules"
TIMEOUT_SECONDS = 60


def scheduler(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`scheduler args…` in `cwd` with `env` added to a clean environment (no config, no Sentry)."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SCHEDULER_") and not k.endswith("_DATABASE_URL")
    }
    environ.update(env)
    return subprocess.run(
        [str(SCHEDULER), *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
