"""pg-boss 12 (schema version 46) backend: direct SQL into pg-boss's own tables."""

from __future__ import annotations

from scheduler.backends.pgboss.adapter import PgBossBackend

__all__ = ["PgBossBackend"]
