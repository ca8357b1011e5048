"""Lookups on a valid config: queues, lanes and DSNs, and the JSON Schema of the format."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from scheduler.config import config_json_schema, queues_of, resolve_dsn, resolve_queue
from scheduler.errors import ConfigError
from scheduler.types import BackendKind, QueueRef
from tests.unit.config.conftest import EXAMPLE

if TYPE_CHECKING:
    from tests.unit.config.conftest import Load


def test_resolve_queue_copies_the_declaration(load: Load) -> None:
    """resolve_queue turns a QueueDef into a QueueRef with every declared field."""
    config = load(EXAMPLE, header=False).config
    assert resolve_queue(config, "rollups") == QueueRef(
        logical="rollups",
        name="billing",
        backend=BackendKind.PROCRASTINATE,
        database="queue",
        task="billing.rollup",
    )


def test_resolve_queue_unknown_name_suggests_one(load: Load) -> None:
    """An undeclared logical queue raises ConfigError with the closest declared name."""
    config = load(EXAMPLE, header=False).config
    with pytest.raises(ConfigError) as caught:
        resolve_queue(config, "insight")
    assert str(caught.value) == (
        "queue 'insight' is not declared (did you mean 'insights'?); declare it under `queues:` or use one "
        "of: chat-automation, chat-ui, insights, rollups"
    )


def test_queues_of_a_queue_schedule(load: Load) -> None:
    """A schedule with `queue` targets exactly that queue."""
    config = load(EXAMPLE, header=False).config
    assert [q.name for q in queues_of(config, config.schedules["insight-digest"])] == [
        "generate-insight-post"
    ]


def test_queues_of_a_lane_schedule_are_default_then_routes_once_each(load: Load) -> None:
    """A lane schedule targets the default queue, then each routed queue once, in order."""
    # HEADER ends inside `lanes:`; the indented `wide:` below adds a second lane.
    loaded = load(
        "  wide:\n    default: plain\n    routes: { a: insights, b: plain, c: insights }\n"
        "schedules:\n  s: { cron: '0 * * * *', cohort: { sql: x }, lane: wide, singleton_key: 's:{key}' }\n",
        header=True,
    )
    config = loaded.config
    assert [q.logical for q in queues_of(config, config.schedules["s"])] == ["plain", "insights"]


def test_resolve_dsn_reads_the_environment(load: Load) -> None:
    """resolve_dsn returns the DSN from the declared variable, as a secret."""
    config = load(EXAMPLE, header=False).config
    dsn = resolve_dsn(config, "app", {"APP_DATABASE_URL": "postgresql://u:pw@h/app"})
    assert (dsn.get_secret_value(), str(dsn)) == ("postgresql://u:pw@h/app", "**********")


def test_resolve_dsn_names_the_variable_to_set(load: Load) -> None:
    """A missing variable raises ConfigError naming it, without any DSN in the message."""
    config = load(EXAMPLE, header=False).config
    with pytest.raises(ConfigError) as caught:
        resolve_dsn(config, "queue", {"APP_DATABASE_URL": "postgresql://u:pw@h/app"})
    assert str(caught.value) == (
        "database 'queue' takes its DSN from the environment variable QUEUE_DATABASE_URL, which is not set "
        "or empty; set it, e.g. QUEUE_DATABASE_URL=postgresql://user@host:5432/dbname"
    )


def test_resolve_dsn_of_an_undeclared_database(load: Load) -> None:
    """An undeclared database raises ConfigError listing the declared ones."""
    config = load(EXAMPLE, header=False).config
    with pytest.raises(ConfigError) as caught:
        resolve_dsn(config, "warehouse", {})
    assert str(caught.value) == (
        "database 'warehouse' is not declared; declare it under `databases:` with `dsn_env: <VARIABLE>`, "
        "or use one of: app, queue"
    )


def test_json_schema_has_dialect_and_title() -> None:
    """The schema names its JSON Schema dialect and a title."""
    schema = config_json_schema()
    assert (schema["$schema"], schema["title"]) == (
        "https://json-schema.org/draft/2020-12/schema",
        "scheduler configuration (version 1)",
    )


def test_json_schema_uses_yaml_key_names() -> None:
    """Queue keys appear as written in YAML (`schema`, not the Python name `db_schema`)."""
    queue = config_json_schema()["$defs"]["QueueDef"]
    assert ("schema" in queue["properties"], "db_schema" in queue["properties"]) == (True, False)


def test_json_schema_schedule_is_closed_and_requires_cron_and_cohort() -> None:
    """A schedule allows no unknown key and requires `cron` and `cohort`."""
    schedule = config_json_schema()["$defs"]["Schedule"]
    assert (schedule["additionalProperties"], schedule["required"]) == (False, ["cron", "cohort"])


def _undeclared(value: object, schema: dict[str, Any], defs: dict[str, Any], path: str) -> list[str]:
    """Keys of `value` that a closed object of `schema` does not declare, following $ref, anyOf and additionalProperties."""
    if "$ref" in schema:
        return _undeclared(value, defs[schema["$ref"].rsplit("/", 1)[1]], defs, path)
    if "anyOf" in schema:
        objects = [s for s in schema["anyOf"] if s.get("type") != "null"]
        return _undeclared(value, objects[0], defs, path) if objects else []
    found: list[str] = []
    if isinstance(value, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in props:
                found += _undeclared(item, props[key], defs, f"{path}.{key}")
            elif isinstance(extra, dict):
                found += _undeclared(item, extra, defs, f"{path}.{key}")
            elif extra is False:
                found.append(f"{path}.{key}")
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            found += _undeclared(item, schema["items"], defs, f"{path}[{i}]")
    return found


def test_json_schema_declares_every_key_of_the_design_example() -> None:
    """Every key the DESIGN.md example writes is declared by the schema (a structural check)."""
    import yaml

    schema = config_json_schema()
    assert _undeclared(yaml.safe_load(EXAMPLE), schema, schema["$defs"], "$") == []
