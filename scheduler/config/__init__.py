"""The configuration layer: schedule files → a typed, validated `Config`, lint rules, JSON Schema. Pure.

`load_config` reads YAML files (or directories of them), merges them and raises `ConfigInvalid` with every
error found, each at its `file:line:col`. `lint` adds the rules that catch configurations which load but
drop or delay work (SCH001…). The lookups (`resolve_queue`, `queues_of`, `resolve_dsn`) are what the
planner and the runtime use to turn logical names into queues and DSNs.
"""

from __future__ import annotations

from scheduler.config.findings import ConfigInvalid, Finding, Location, Locations, Severity
from scheduler.config.lint import lint
from scheduler.config.loader import LoadedConfig, load_config
from scheduler.config.models import Config, Schedule
from scheduler.config.validate import config_json_schema, queues_of, resolve_dsn, resolve_queue

__all__ = [
    "Config",
    "ConfigInvalid",
    "Finding",
    "LoadedConfig",
    "Location",
    "Locations",
    "Schedule",
    "Severity",
    "config_json_schema",
    "lint",
    "load_config",
    "queues_of",
    "resolve_dsn",
    "resolve_queue",
]
