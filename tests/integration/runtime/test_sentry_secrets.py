"""Every failure path of `scheduler run` that reaches Sentry, driven in process on a real PostgreSQL with the
real sentry-sdk and a transport that keeps envelopes: each sends at least one event, and no envelope (nor
any log line) holds a database password or a value of the environment.

The DSNs carry passwords (the server's trust authentication ignores them), one as a URL, one as libpq
`key=value`. The environment also holds a token under a secret-looking name and a private value under a
name that says nothing: only a repr of the environment (a frame's local variables) could send that one.
The sidecar is wired as `scheduler run` wires it (`commands/run.py`): one `Redactor` of the process
environment shared by the logger, Sentry and the service.
"""

from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg.conninfo
import pytest
import sentry_sdk
from sentry_sdk.transport import Transport

from scheduler.observe.log import configure
from scheduler.observe.metrics import Metrics
from scheduler.observe.redact import Environ, Redactor
from scheduler.runtime.sentry import init_sentry
from scheduler.runtime.service import Service
from scheduler.runtime.settings import Clock, Settings
from tests.conftest import free_port

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from sentry_sdk.envelope import Envelope

    from tests.conftest import PrivatePostgres

PASSWORD = "S3cr3tPa55"
APP_PASSWORD = "An0therPa55w0rd"
TOKEN = "tok-9f8e7d6c5b4a3210"
PRIVATE = "plain-but-private-7c1d"
SECRETS = (PASSWORD, APP_PASSWORD, TOKEN, PRIVATE)
SENTRY_DSN = "https://publickey@sentry.example.invalid/1"
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)

DATABASES = """\
version: 1
databases:
  queue: { dsn_env: QUEUE_URL }
  app: { dsn_env: APP_URL }
"""
PROCRASTINATE = "queues:\n  work: { name: work, backend: procrastinate, task: demo.work }\n"
PGBOSS = "queues:\n  work: { name: work, backend: pgboss, policy: standard }\n"
SCHEDULE = """\
schedules:
  hourly:
    cron: "0 * * * *"
    cohort:
      {cohort}
    queue: work
    catch_up: {{ window: 3h, policy: all }}
"""
STATIC = SCHEDULE.format(cohort="static: [{ key: a }, { key: b }]")
BROKEN_SQL = SCHEDULE.format(cohort='database: app\n      sql: "select 1/0 as key"')


def as_url(dsn: str, password: str) -> str:
    """`dsn` as a postgresql:// URL with `password`."""
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    return (
        f"postgresql://{info['user']}:{password}@{info['host']}:{info.get('port') or 5432}/{info['dbname']}"
    )


def with_password(dsn: str, password: str) -> str:
    """`dsn` in libpq's key=value form with `password`."""
    return psycopg.conninfo.make_conninfo(dsn, password=password)


class FixedClock(Clock):
    """A clock that reads `at` (tests move it)."""

    def __init__(self, at: datetime) -> None:
        super().__init__()
        self.at = at

    def now(self) -> datetime:
        return self.at


class KeepEnvelopes(Transport):
    """Sends nothing; keeps every envelope."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)


@dataclass
class Sidecar:
    service: Service
    transport: KeepEnvelopes
    log: io.StringIO
    clock: FixedClock

    def sent(self) -> bytes:
        """Every envelope so far, serialized as the SDK would send it (after a flush, not a sleep)."""
        sentry_sdk.flush()
        return b"".join(e.serialize() for e in self.transport.envelopes)

    def events(self) -> list[dict[str, Any]]:
        sentry_sdk.flush()
        found = []
        for envelope in self.transport.envelopes:
            for item in envelope.items:
                if item.type == "event":
                    assert item.payload.json is not None
                    found.append(item.payload.json)
        return found

    def assert_nothing_secret(self) -> None:
        sent, logged = self.sent(), self.log.getvalue()
        for secret in SECRETS:
            assert secret.encode() not in sent, f"{secret} sent to Sentry"
            assert secret not in logged, f"{secret} logged"
        for event in self.events():
            for value in event.get("exception", {}).get("values", []):
                for frame in (value.get("stacktrace") or {}).get("frames", []):
                    assert "vars" not in frame, "frame local variables were sent"


@pytest.fixture
def sidecar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Sidecar]]:
    """Factory: a Service running `yaml` with these DSN variables set in the process environment."""

    def make(yaml: str, dsns: dict[str, str], *, load: bool = True) -> Sidecar:
        for name, value in {**dsns, "API_TOKEN": TOKEN, "UNRELATED_SETTING": PRIVATE}.items():
            monkeypatch.setenv(name, value)
        environ = Environ(os.environ)
        redactor = Redactor.from_environ(environ)
        log = io.StringIO()
        logger = configure("json", logging.DEBUG, log, redactor=redactor)
        transport = KeepEnvelopes()
        settings = Settings(sentry_dsn=SENTRY_DSN, replica_id="r1", retry_backoff=timedelta(seconds=10))
        assert init_sentry(settings, transport=transport, redactor=redactor)
        path = tmp_path / "s.yaml"
        path.write_text(yaml)
        clock = FixedClock(T0 - timedelta(minutes=5))
        service = Service(
            settings,
            [path],
            logger=logger,
            metrics=Metrics(),
            clock=clock,
            environ=environ,
            redactor=redactor,
        )
        made = Sidecar(service, transport, log, clock)
        if load:
            assert service.load()
        return made

    try:
        yield make
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.get_global_scope().set_client(None)


def tick(sidecar: Sidecar, name: str = "hourly") -> None:
    """A first pass before T0 (no past tick), then one just after it: the tick at T0 fires."""
    sidecar.service.run_pass(name)
    sidecar.clock.at = T0 + timedelta(seconds=1)
    sidecar.service.run_pass(name)


def exception_values(event: dict[str, Any]) -> str:
    return " | ".join(str(v.get("value")) for v in event.get("exception", {}).get("values", []))


def test_cohort_query_error(sidecar: Callable[..., Sidecar], queue_dsn: str) -> None:
    """A failing cohort query sends the tick's failure, with the database's message and no password."""
    s = sidecar(
        DATABASES + PROCRASTINATE + BROKEN_SQL,
        {"QUEUE_URL": as_url(queue_dsn, PASSWORD), "APP_URL": with_password(queue_dsn, APP_PASSWORD)},
    )
    tick(s)
    events = s.events()
    assert len(events) == 1
    assert "division by zero" in exception_values(events[0])
    s.assert_nothing_secret()


def test_missing_queue_schema(sidecar: Callable[..., Sidecar], database: str) -> None:
    """A pg-boss queue in a database without pg-boss's schema: the failed tick is sent, no password."""
    s = sidecar(
        DATABASES + PGBOSS + STATIC,
        {"QUEUE_URL": as_url(database, PASSWORD), "APP_URL": with_password(database, APP_PASSWORD)},
    )
    tick(s)
    events = s.events()
    assert len(events) == 1
    assert "pg-boss" in exception_values(events[0])
    s.assert_nothing_secret()


@pytest.mark.parametrize(
    ("dsn", "said"),
    [
        (f"postgresql://root:{PASSWORD}@127.0.0.1:{free_port()}/queue", "127.0.0.1"),
        # libpq's error repeats a DSN it cannot parse (here a colon is missing), password included
        (f"postgresql//root:{PASSWORD}@127.0.0.1/queue", 'missing "=" after "***"'),
    ],
    ids=["refused", "unparsable"],
)
def test_queue_database_down_at_start(sidecar: Callable[..., Sidecar], dsn: str, said: str) -> None:
    """The queue database cannot be reached: the start sends one event (the load goes on, its passes
    retry), and the passes that keep failing send no more while it stays down."""
    s = sidecar(DATABASES + PROCRASTINATE + STATIC, {"QUEUE_URL": dsn, "APP_URL": dsn})
    assert len(s.events()) == 1
    tick(s)
    events = s.events()
    assert len(events) == 1
    assert said in exception_values(events[0])
    s.assert_nothing_secret()


def test_queue_database_down_at_a_tick(
    sidecar: Callable[..., Sidecar], private_postgres: PrivatePostgres, private_queue_dsn: str
) -> None:
    """The queue database fans out a tick, then stops: the next pass sends one event, later ones none."""
    s = sidecar(
        DATABASES + PROCRASTINATE + STATIC,
        {
            "QUEUE_URL": as_url(private_queue_dsn, PASSWORD),
            "APP_URL": with_password(private_queue_dsn, APP_PASSWORD),
        },
    )
    tick(s)
    assert s.events() == []
    assert '"event":"fanout_enqueued"' in s.log.getvalue()
    private_postgres.stop()
    s.clock.at = T0 + timedelta(hours=1, seconds=1)
    s.service.run_pass("hourly")
    s.service.run_pass("hourly")
    events = s.events()
    assert len(events) == 1
    assert events[0]["exception"]["values"][-1]["type"] == "OperationalError"
    s.assert_nothing_secret()


def test_watcher_whose_queue_is_missing(sidecar: Callable[..., Sidecar], queues_db: str) -> None:
    """A queue-level watcher of a pg-boss queue that does not exist: its first failed pass sends one event
    naming the queue, the same failure again sends none."""
    yaml = (
        DATABASES
        + "queues:\n  gone: { name: no-such-queue, backend: pgboss, policy: standard }\n"
        + "watchers:\n  gone-stalled: { queue: gone, queue_level: true }\n"
    )
    s = sidecar(yaml, {"QUEUE_URL": as_url(queues_db, PASSWORD), "APP_URL": as_url(queues_db, APP_PASSWORD)})
    s.service.run_watch("gone-stalled")
    s.service.run_watch("gone-stalled")
    events = s.events()
    assert len(events) == 1
    assert "no-such-queue" in exception_values(events[0])
    assert '"event":"watch_failed"' in s.log.getvalue()
    s.assert_nothing_secret()


def test_an_event_whose_message_quotes_a_dsn_is_scrubbed(
    sidecar: Callable[..., Sidecar], queue_dsn: str
) -> None:
    """Whatever an exception, a breadcrumb, a tag, `extra` or a context carries, the password and the
    environment's secrets are gone from the envelope (the redactor runs over the whole event)."""
    s = sidecar(
        DATABASES + PROCRASTINATE + STATIC, {"QUEUE_URL": as_url(queue_dsn, PASSWORD), "APP_URL": "x"}
    )
    dsn = os.environ["QUEUE_URL"]
    with sentry_sdk.isolation_scope():  # the tags and breadcrumbs stay with this test
        sentry_sdk.add_breadcrumb(message=f"connecting to {dsn}", data={"env": dict(os.environ)})
        sentry_sdk.set_tag("dsn", dsn[:200])
        sentry_sdk.set_extra("environ", dict(os.environ))
        sentry_sdk.set_context("db", {"dsn": dsn, "token": TOKEN})
        try:
            raise RuntimeError(f"could not reach {dsn} with {TOKEN}")
        except RuntimeError as exc:
            sentry_sdk.capture_exception(exc)
        sentry_sdk.capture_message(f"message {dsn} password={PASSWORD}")
    events = s.events()
    assert len(events) == 2
    sent = s.sent()
    for secret in (PASSWORD, TOKEN):
        assert secret.encode() not in sent
    assert exception_values(events[0]) == "could not reach *** with ***"  # the DSN is known: all of it goes
    assert events[1]["message"] == "message *** password=***"
