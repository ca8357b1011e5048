"""scheduler: a fan-out scheduler sidecar for Postgres job queues."""

from __future__ import annotations
