"""Fixtures for the configuration tests: YAML files written into tmp_path, loaded, their findings formatted."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from scheduler.config import ConfigInvalid, LoadedConfig, load_config

HEADER = """\
version: 1
databases:
  app: { dsn_env: APP_DATABASE_URL }
  queue: { dsn_env: QUEUE_DATABASE_URL }
queues:
  insights: { name: generate-insight-post, backend: pgboss, policy: stately }
  plain: { name: plain-jobs, backend: pgboss }
  rollups: { name: billing, backend: procrastinate, task: billing.rollup }
lanes:
  chat: { default: plain, routes: { report: insights } }
"""
"""Ten lines of valid declarations; a test's own YAML starts at line 11."""

EXAMPLE = """\
version: 1
databases:          # DSNs come from the environment, never from the file
  app: { dsn_env: APP_DATABASE_URL }
  queue: { dsn_env: QUEUE_DATABASE_URL }
queues:
  insights: { name: generate-insight-post, backend: pgboss, database: queue, policy: stately }
  chat-ui: { name: generate-chat-assistant-response-ui, backend: pgboss, database: queue }
  chat-automation: { name: generate-chat-assistant-response-automation, backend: pgboss, database: queue }
  rollups: { name: billing, backend: procrastinate, database: queue, task: billing.rollup }
lanes:
  chat-assistant:
    default: chat-ui
    routes: { scheduled_report: chat-automation, data_change: chat-automation }
aliases:   # a renamed queue: jobs still arriving on the old name are moved
  generate-chat-assistant-response: chat-ui
schedules:
  insight-digest:
    cron: "0 * * * *"
    timezone: UTC
    cohort:
      sql: select id as key, json_build_object('organizationId', id) as data
           from organization where digest_hour = %(hour)s
    queue: insights
    singleton_key: "insight:{key}"
    stagger: { window: 60m, strategy: hash }
  billing-rollup:
    cron: "15 2 * * *"
    timezone: Europe/Berlin
    cohort:
      static:
        - { key: acme, data: { plan: pro } }
        - { key: globex, data: { plan: team } }
    queue: rollups
    singleton_key: "rollup:{key}"
    stagger: { window: 10m, strategy: spread }
watchers:
  chat-generating:
    every: 30s
    stuck_after: 90s
    sql: select id as key, source from chat_message
         where status = 'GENERATING' and updated_at < now() - %(stuck_after)s
    lane: chat-assistant
"""
"""The YAML format example of DESIGN.md, verbatim."""

Write = Callable[..., Path]
Load = Callable[..., LoadedConfig]
Errors = Callable[..., list[str]]


@pytest.fixture
def write(tmp_path: Path) -> Write:
    """`write(text, name="config.yaml", header=True)`: write dedented YAML (after HEADER) and return its path."""

    def make(text: str, name: str = "config.yaml", *, header: bool = True) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text((HEADER if header else "") + textwrap.dedent(text), encoding="utf-8")
        return path

    return make


@pytest.fixture
def load(write: Write) -> Load:
    """`load(text, **write_kwargs)`: write one file and load it (it must be valid)."""

    def make(text: str, **kwargs: object) -> LoadedConfig:
        return load_config([write(text, **kwargs)])

    return make


@pytest.fixture
def errors() -> Errors:
    """`errors(*paths)`: load paths that must be invalid; the formatted findings, in order."""

    def make(*paths: Path) -> list[str]:
        with pytest.raises(ConfigInvalid) as caught:
            load_config(list(paths))
        return [f.format() for f in caught.value.findings]

    return make
