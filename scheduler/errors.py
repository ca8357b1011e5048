"""Exceptions: one base class, one subclass per failure a caller handles differently.

Each class docstring is its default message. Messages say what went wrong, where (file:line, schedule,
queue), which values are allowed, and what to do.
"""

from __future__ import annotations


class SchedulerError(Exception):
    """The scheduler failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__class__.__doc__ or "").strip())


class ConfigError(SchedulerError):
    """The schedule files are invalid. Run `scheduler validate` to list every finding."""


class SchemaMismatch(SchedulerError):
    """The queue system's tables are not the version this scheduler was built against."""


class QueueMissing(SchedulerError):
    """A target queue does not exist in the queue database."""


class CohortError(SchedulerError):
    """A cohort query failed; nothing was enqueued for that tick."""


class PlanError(SchedulerError):
    """A cohort row cannot be planned (missing template field, payload that is not a JSON object)."""


class BackendError(SchedulerError):
    """The queue database rejected an enqueue; nothing of the tick was committed."""
