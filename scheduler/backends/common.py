"""SQL shared by every backend (see `common.sql`)."""

from __future__ import annotations

from scheduler.sqlfile import load_queries

QUERIES = load_queries("scheduler.backends", "common.sql")
