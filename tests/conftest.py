"""Shared fixtures: a real PostgreSQL, one throwaway database per test (or per template), and a private
PostgreSQL cluster for tests that must restart the server (`private_postgres`).

Set SCHEDULER_TEST_ADMIN_DSN to point the suite at another server (default: the local trust-auth one).
The shared server is never restarted or stopped by a test: other tests and developers use it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

ADMIN_DSN = os.environ.get("SCHEDULER_TEST_ADMIN_DSN", "postgresql://root@127.0.0.1/postgres")


def dsn_for(dbname: str) -> str:
    """The admin DSN with its database swapped for `dbname`."""
    info = psycopg.conninfo.conninfo_to_dict(ADMIN_DSN)
    info["dbname"] = dbname
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in info.items() if v is not None})


def create_database(name: str, template: str | None = None) -> str:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        conn.execute(query)
    return dsn_for(name)


def drop_database(name: str) -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


MakeDatabase = Callable[..., str]


@pytest.fixture
def make_database() -> Iterator[MakeDatabase]:
    """Factory: `make_database(template=None) -> dsn` of a new database, dropped after the test."""
    created: list[str] = []

    def make(template: str | None = None) -> str:
        name = f"sched_test_{uuid.uuid4().hex[:12]}"
        created.append(name)
        return create_database(name, template)

    yield make
    for name in created:
        drop_database(name)


@pytest.fixture
def database(make_database: MakeDatabase) -> str:
    """DSN of a fresh, empty database for this test."""
    return make_database()


def apply_procrastinate_schema(dsn: str) -> None:
    """Let procrastinate create its own schema in `dsn` (`apply_schema`), plus the interop app's
    `interop_done` table."""
    import procrastinate

    from tests.interop.procrastinate_app import DONE_TABLE

    app = procrastinate.App(connector=procrastinate.SyncPsycopgConnector(conninfo=dsn))
    with app.open():
        app.schema_manager.apply_schema()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(DONE_TABLE)


@pytest.fixture(scope="session")
def procrastinate_template() -> Iterator[str]:
    """Name of a database whose schema procrastinate applied itself, plus `interop_done`."""
    name = f"sched_tpl_procrastinate_{uuid.uuid4().hex[:8]}"
    dsn = create_database(name)
    try:
        apply_procrastinate_schema(dsn)
        yield name
    finally:
        drop_database(name)


@pytest.fixture
def queue_dsn(make_database: MakeDatabase, procrastinate_template: str) -> str:
    """DSN of this test's clone of `procrastinate_template`."""
    return make_database(template=procrastinate_template)


QUEUES_TEMPLATE_PGBOSS_QUEUES = [
    {"name": "generate-insight-post", "options": {"policy": "stately"}},
    {"name": "lane-ui", "options": {"policy": "standard"}},
    {"name": "lane-batch", "options": {"policy": "standard"}},
    {"name": "bulk", "options": {"policy": "standard"}},
]
"""The pg-boss queues of `queues_template` (name, pg-boss Queue options)."""


@pytest.fixture(scope="session")
def queues_template() -> Iterator[str]:
    """Name of a database holding BOTH queue systems, each schema created by the real library: pg-boss's
    `start()` (plus `QUEUES_TEMPLATE_PGBOSS_QUEUES`) and procrastinate's `apply_schema` (plus the interop
    app's `interop_done` table)."""
    import json

    from tests.integration.pgboss.interop import node, to_url

    name = f"sched_tpl_queues_{uuid.uuid4().hex[:8]}"
    dsn = create_database(name)
    try:
        setup = node("setup.mjs", to_url(dsn), json.dumps(QUEUES_TEMPLATE_PGBOSS_QUEUES))
        assert setup == {"version": 46}
        apply_procrastinate_schema(dsn)
        yield name
    finally:
        drop_database(name)


@pytest.fixture
def queues_db(make_database: MakeDatabase, queues_template: str) -> str:
    """DSN of this test's clone of `queues_template` (pg-boss and procrastinate side by side)."""
    return make_database(template=queues_template)


PG_MAJOR = "15"


def postgres_bindir() -> Path:
    """PostgreSQL 15's binaries: Debian's versioned directory, else what `pg_config --bindir` names."""
    debian = Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")
    if (debian / "initdb").exists():
        return debian
    out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True, timeout=30)
    return Path(out.stdout.strip())


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PrivatePostgres:
    """A PostgreSQL cluster of one test's own: initdb into a temporary directory, trust auth, listening on
    127.0.0.1 on a free port with its socket inside that directory. Restart it freely; the shared server is
    untouched.

    initdb refuses to run as root: as root, every PostgreSQL binary runs as the `postgres` OS user (via
    `runuser`), which owns the temporary directory.
    """

    START_ATTEMPTS = 3
    """A port picked free can be taken before the server binds it: start again on another one."""

    def __init__(self) -> None:
        self.bindir = postgres_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="sched-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.log = self.root / "server.log"
        self.port = 0
        self._user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self._user = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(self.root)
                raise RuntimeError(
                    "running as root, and initdb refuses root: create a `postgres` OS user "
                    "(the PostgreSQL packages do) or run the tests as another user"
                ) from None
            os.chown(self.root, self._user.pw_uid, self._user.pw_gid)
        self.socket_dir.mkdir()
        if self._user is not None:
            os.chown(self.socket_dir, self._user.pw_uid, self._user.pw_gid)

    def _run(self, binary: str, *args: str, timeout: float = 60) -> None:
        command = [str(self.bindir / binary), *args]
        if self._user is not None:
            command = ["runuser", "-u", self._user.pw_name, "--", *command]
        done = subprocess.run(command, cwd=self.root, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(
                f"{binary} {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
                f"{self._log_tail()}"
            )

    def _log_tail(self) -> str:
        try:
            return "\nserver log:\n" + "\n".join(self.log.read_text().splitlines()[-20:])
        except OSError:
            return ""

    def _pg_ctl(self, action: str, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", *args, action)

    def start(self) -> None:
        """initdb and start the server; on a port lost to a race, try another."""
        self._run(
            "initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C",
            "--no-sync", "--no-instructions",
        )  # fmt: skip
        for attempt in range(1, self.START_ATTEMPTS + 1):
            self.port = free_port()
            settings = self.data / "postgresql.auto.conf"
            settings.write_text(
                f"listen_addresses = '127.0.0.1'\n"
                f"port = {self.port}\n"
                f"unix_socket_directories = '{self.socket_dir}'\n"
                "max_connections = 50\n"
                "shared_buffers = '16MB'\n"
                "fsync = off\n"  # a throwaway cluster: a clean restart keeps every commit anyway
            )
            if self._user is not None:
                os.chown(settings, self._user.pw_uid, self._user.pw_gid)
            try:
                self._pg_ctl("start")
                return
            except RuntimeError:
                if attempt == self.START_ATTEMPTS:
                    raise

    def restart(self) -> None:
        """Restart the server the way an operator does (fast shutdown: open sessions are cut); returns once
        it accepts connections again, on the same port."""
        self._pg_ctl("restart", "-m", "fast")

    def stop(self) -> None:
        """Stop the server (immediate: nothing of it is kept) and remove its directory."""
        try:
            if (self.data / "postmaster.pid").exists():
                self._pg_ctl("stop", "-m", "immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def dsn(self, dbname: str = "postgres") -> str:
        return psycopg.conninfo.make_conninfo(
            host="127.0.0.1", port=str(self.port), user="postgres", dbname=dbname
        )

    def create_database(self, name: str) -> str:
        """Create `name` in this cluster; its DSN."""
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.dsn(name)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A started PostgreSQL 15 cluster of this test's own (see `PrivatePostgres`); stopped and removed at
    teardown, whatever the test's outcome. The one way a test may restart a server."""
    cluster = PrivatePostgres()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def private_queue_dsn(private_postgres: PrivatePostgres) -> str:
    """DSN of a `queue` database in `private_postgres`, with procrastinate's schema (applied by
    procrastinate) and `interop_done`, as in `queue_dsn`."""
    dsn = private_postgres.create_database("queue")
    apply_procrastinate_schema(dsn)
    return dsn
