"""The procrastinate 3 backend: exact bulk enqueue into `procrastinate_jobs`."""

from __future__ import annotations

from scheduler.backends.procrastinate.adapter import ProcrastinateBackend

__all__ = ["ProcrastinateBackend"]
