"""Which database holds a schedule's ledger and queues, and how to connect to it.

The ledger of a schedule lives in the database of the schedule's queues, so its claim and its jobs commit
in one transaction on one connection. A schedule whose lane routes to queues in several databases cannot
have that guarantee: `ledger_database` refuses it with a message saying what to change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg

from scheduler.config.validate import queues_of, resolve_dsn
from scheduler.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from scheduler.config.models import Config

APPLICATION_NAME = "scheduler:run"


def ledger_database(config: Config, schedule: str) -> str:
    """The logical database holding `schedule`'s queues (and so its ledger). ConfigError when there are several."""
    databases = sorted({q.database for q in queues_of(config, config.schedules[schedule])})
    if len(databases) != 1:
        raise ConfigError(
            f"schedule {schedule!r} routes to queues in {len(databases)} databases ({', '.join(databases)}); "
            "a tick's claim and its jobs must commit in one transaction, so put all of its queues in one database"
        )
    return databases[0]


def ledger_databases(config: Config) -> dict[str, list[str]]:
    """Logical database → the enabled schedules whose ledger it holds (ConfigError as `ledger_database`)."""
    found: dict[str, list[str]] = {}
    for name, schedule in sorted(config.schedules.items()):
        if schedule.enabled:
            found.setdefault(ledger_database(config, name), []).append(name)
    return found


def connect(
    config: Config, database: str, environ: Mapping[str, str], timeout: int = 5
) -> psycopg.Connection[Any]:
    """A new connection to a declared database (DSN from its environment variable), in transaction mode."""
    dsn = resolve_dsn(config, database, environ).get_secret_value()
    return psycopg.connect(dsn, connect_timeout=timeout, application_name=APPLICATION_NAME)
