"""Fan-out throughput, side by side on one scratch database: ours vs pg-boss insert()/send(), procrastinate's
batch_defer and a raw COPY into pgboss.job (the ceiling).

    .venv/bin/python benchmarks/fanout_throughput.py --sizes 10000,100000,1000000 [--dsn ADMIN_DSN] [--repeat N]
        [--small-repeat N]

The script creates a scratch database (dropped at the end, even on error), lets the real pg-boss 12.38.0
build its schema and a `stately` queue (`tests/interop/setup.mjs`, on the pinned Node 22 that
scripts/dev-setup installs under tests/interop/node_modules) and procrastinate build its own
(`apply_schema`). For each cohort size N it fills an app table with N organizations, then measures, with the
queue emptied and `VACUUM ANALYZE`d before every measurement:

1. ours: `scheduler.fanout.fire` of a schedule whose cohort is `select … from bench_org` (streamed), per-entity
   singleton keys `insight:{key}`, hash stagger over 60 minutes: cohort → plan → committed, report included.
   It runs in a child process, so the peak RSS reported (ru_maxrss) is the fan-out's own; meanwhile the
   parent polls pg_stat_activity for connections named `scheduler:enqueue`.
2. pg-boss `insert()` of the same N jobs (same data, singletonKey and startAfter), one call.
3. pg-boss `send()` one per job through its default pool (max 10): capped at `--send-cap` jobs (far too slow
   for a million); its rate is reported against every N.
4. procrastinate `Task.batch_defer` of N jobs (no queueing lock: `configure` can only give one lock to the
   whole batch, which would fail it).
5. ours into procrastinate: the same fan-out into a procrastinate queue, each job with its queueing lock
   `insight:{key}` (the cohort counted first, the ids taken, one COPY into procrastinate_jobs).
6. raw COPY of the same N rows into pgboss.job (text COPY, rows rendered before the clock starts).

Then `dry-run` (`fire(..., dry=True)`, i.e. `predict`) of the 100k cohort against the cohort query alone.
Every number is measured in this run; nothing is assumed. Each timing is the median of `--repeat` runs
(`--small-repeat`, default 9, for cohorts of up to 10,000 jobs).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parents[1]
INTEROP = REPO / "tests" / "interop"
sys.path.insert(0, str(REPO))  # the pinned-Node helper lives with the pg-boss scripts it runs
from tests.interop.nodejs import NodeMissing, node_binary  # noqa: E402 -- importable only after the sys.path line above

QUEUE = "bench-insights"
SMALL = 10_000
"""Cohorts up to this size are measured `--small-repeat` times."""
PROC_QUEUE = "bench"
TICK = datetime(2030, 1, 1, 14, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=60)
APPLICATION_NAME = "scheduler:enqueue"
CONFIG = """\
version: 1
databases:
  app: { dsn_env: APP_DATABASE_URL }
  queue: { dsn_env: QUEUE_DATABASE_URL }
queues:
  insights: { name: bench-insights, backend: pgboss, database: queue, policy: stately }
  digests: { name: bench, backend: procrastinate, database: queue, task: bench.digest }
schedules:
  digest:
    cron: "0 * * * *"
    timezone: UTC
    cohort:
      sql: select id as key, json_build_object('organizationId', id) as data from bench_org
    queue: insights
    singleton_key: "insight:{key}"
    stagger: { window: 60m, strategy: hash }
  digest-procrastinate:
    cron: "0 * * * *"
    timezone: UTC
    cohort:
      sql: select id as key, json_build_object('organizationId', id) as data from bench_org
    queue: digests
    singleton_key: "insight:{key}"
    stagger: { window: 60m, strategy: hash }
"""
COPY_COLUMNS = (
    "id",
    "name",
    "data",
    "priority",
    "state",
    "start_after",
    "created_on",
    "singleton_key",
    "retry_limit",
    "retry_delay",
    "retry_backoff",
    "retry_delay_max",
    "expire_seconds",
    "deletion_seconds",
    "keep_until",
    "policy",
    "dead_letter",
    "heartbeat_seconds",
)


# --------------------------------------------------------------------------------------------- child side


def child_main(spec: dict[str, Any]) -> None:
    """Run one fan-out (or dry-run) in this process and print its numbers as one JSON line."""
    from scheduler.config import load_config
    from scheduler.fanout import Fanout, default_backends, fire

    environ = {"APP_DATABASE_URL": spec["dsn"], "QUEUE_DATABASE_URL": spec["dsn"]}
    fanout = Fanout(
        load_config([Path(spec["config"])]), environ, default_backends(), stream=spec.get("stream", True)
    )
    base_rss = _rss_kb()
    started = time.perf_counter()
    report = fire(fanout, spec.get("schedule", "digest"), TICK, dry=bool(spec.get("dry"))).report
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "seconds": seconds,
                "planned": report.planned,
                "accepted": report.accepted,
                "dropped": report.dropped,
                "connections_used": report.connections_used,
                "base_rss_kb": base_rss,
                "peak_rss_kb": resource.getrusage(
                    resource.RUSAGE_SELF
                ).ru_maxrss,  # carries the parent's across exec
                "vm_hwm_kb": _vm_hwm_kb(),
            }
        )
    )


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _vm_hwm_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# -------------------------------------------------------------------------------------------- parent side


@dataclass
class Measure:
    name: str
    n: int
    seconds: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def rate(self) -> float:
        return self.n / self.median


class ConnectionWatch(threading.Thread):
    """Polls pg_stat_activity every few ms for sessions named `scheduler:enqueue`; keeps the most seen."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.most = 0
        self.polls = 0
        self.ready = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.is_set():
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                    "AND datname = current_database()",
                    (APPLICATION_NAME,),
                ).fetchone()
                self.most = max(self.most, int(row[0]) if row else 0)
                self.polls += 1
                self.ready.set()
                self.stop.wait(0.005)


def dsn_for(admin: str, dbname: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(admin)
    info["dbname"] = dbname
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in info.items() if v is not None})


def to_url(dsn: str) -> str:
    """libpq key=value → postgresql:// URL (node-postgres reads only URLs)."""
    from urllib.parse import quote

    info = psycopg.conninfo.conninfo_to_dict(dsn)
    user = quote(str(info.get("user", "")), safe="")
    password = info.get("password")
    auth = f"{user}:{quote(str(password), safe='')}@" if password else (f"{user}@" if user else "")
    port = f":{info['port']}" if info.get("port") else ""
    return f"postgresql://{auth}{info.get('host', 'localhost')}{port}/{quote(str(info['dbname']), safe='')}"


def node_path() -> str:
    """The pinned Node 22 pg-boss runs on (not the machine's `node`); exits in one line when it is missing."""
    try:
        return str(node_binary())
    except NodeMissing as e:
        raise SystemExit(f"fanout_throughput: {e}") from None


def node(*args: str, timeout: float = 3600) -> dict[str, Any]:
    done = subprocess.run(
        [node_path(), *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"node {' '.join(args[:2])} failed ({done.returncode}):\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def reset(dsn: str) -> None:
    """Empty both queues and VACUUM ANALYZE their tables."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM pgboss.job WHERE name = %s", (QUEUE,))
        conn.execute("DELETE FROM procrastinate_jobs")
        conn.execute("VACUUM ANALYZE pgboss.job")
        conn.execute("VACUUM ANALYZE procrastinate_jobs")


def count_jobs(dsn: str) -> tuple[int, int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        boss = conn.execute("SELECT count(*) FROM pgboss.job WHERE name = %s", (QUEUE,)).fetchone()
        proc = conn.execute("SELECT count(*) FROM procrastinate_jobs").fetchone()
    return (int(boss[0]) if boss else 0, int(proc[0]) if proc else 0)


def fill_app_table(dsn: str, n: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_org")
        conn.execute("CREATE TABLE bench_org (id bigint PRIMARY KEY, name text NOT NULL)")
        conn.execute("INSERT INTO bench_org SELECT i, 'org ' || i FROM generate_series(1, %s) AS i", (n,))
        conn.execute("VACUUM ANALYZE bench_org")


def planned_jobs(n: int) -> list[tuple[int, str, datetime]]:
    """(organizationId, singleton key, start_after) of each entity, exactly as our plan computes them."""
    from scheduler.config.models import StaggerStrategy
    from scheduler.planning.stagger import stagger_offset

    return [
        (i, f"insight:{i}", TICK + stagger_offset(StaggerStrategy.HASH, WINDOW, str(i), i - 1, None))
        for i in range(1, n + 1)
    ]


def write_pgboss_jobs(jobs: list[tuple[int, str, datetime]], path: Path) -> None:
    with path.open("w") as out:
        json.dump(
            [
                {"data": {"organizationId": i}, "singletonKey": k, "startAfter": s.isoformat()}
                for i, k, s in jobs
            ],
            out,
        )


def copy_payload(dsn: str, jobs: list[tuple[int, str, datetime]]) -> bytes:
    """The COPY text of the jobs, with the queue's settings, rendered before any clock starts."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT policy, retry_limit, retry_delay, retry_backoff, retry_delay_max, expire_seconds, "
            "deletion_seconds, retention_seconds, dead_letter, heartbeat_seconds FROM pgboss.queue "
            "WHERE name = %s",
            (QUEUE,),
        ).fetchone()
    assert row is not None
    policy, limit, delay, backoff, delay_max, expire, deletion, retention, dead, heartbeat = row

    def text(v: object) -> str:
        if v is None:
            return r"\N"
        if isinstance(v, bool):
            return "t" if v else "f"
        return str(v)

    now = datetime.now(UTC).isoformat()
    lines = []
    for i, key, start in jobs:
        keep = start + timedelta(seconds=retention)
        fields = (
            str(uuid.uuid4()),
            QUEUE,
            json.dumps({"organizationId": i}),
            "0",
            "created",
            start.isoformat(),
            now,
            key,
            text(limit),
            text(delay),
            text(backoff),
            text(delay_max),
            text(expire),
            text(deletion),
            keep.isoformat(),
            text(policy),
            text(dead),
            text(heartbeat),
        )
        lines.append("\t".join(fields))
    return ("\n".join(lines) + "\n").encode()


def run_ours(
    dsn: str, config: Path, n: int, *, dry: bool = False, schedule: str = "digest", stream: bool = True
) -> dict[str, Any]:
    watch = ConnectionWatch(dsn)
    watch.start()
    watch.ready.wait(10)
    spec = json.dumps({"dsn": dsn, "config": str(config), "dry": dry, "schedule": schedule, "stream": stream})
    try:
        done = subprocess.run(
            [sys.executable, __file__, "--child", spec],
            capture_output=True,
            text=True,
            check=False,
            timeout=3600,
        )
    finally:
        watch.stop.set()
        watch.join(10)
    if done.returncode != 0:
        raise SystemExit(f"the fan-out child failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["server_connections"] = watch.most
    if result["planned"] != n or result["accepted"] != n:
        raise SystemExit(f"ours: expected {n} accepted, got {result}")
    return result


def run_copy(dsn: str, payload: bytes) -> float:
    with psycopg.connect(dsn) as conn:
        statement = sql.SQL("COPY pgboss.job ({}) FROM STDIN").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in COPY_COLUMNS)
        )
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy(statement) as copy:
            for offset in range(0, len(payload), 1 << 20):
                copy.write(payload[offset : offset + (1 << 20)])
        conn.commit()
        return time.perf_counter() - started


def run_procrastinate(dsn: str, n: int) -> float:
    import procrastinate

    app = procrastinate.App(connector=procrastinate.SyncPsycopgConnector(conninfo=dsn))

    @app.task(name="bench.digest", queue=PROC_QUEUE)
    def digest(organizationId: int) -> None:  # never run: the jobs are deleted
        return None

    kwargs: list[dict[str, Any]] = [{"organizationId": i} for i in range(1, n + 1)]
    with app.open():
        started = time.perf_counter()
        digest.batch_defer(*kwargs)
        return time.perf_counter() - started


def cohort_query_seconds(dsn: str) -> float:
    """The cohort SQL alone: executed and every row fetched by the client (no planning)."""
    with psycopg.connect(dsn) as conn:
        started = time.perf_counter()
        rows = conn.execute(
            "select id as key, json_build_object('organizationId', id) as data from bench_org"
        ).fetchall()
        seconds = time.perf_counter() - started
    assert rows
    return seconds


def versions(dsn: str) -> dict[str, str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    node_v = subprocess.run([node_path(), "--version"], capture_output=True, text=True, check=False).stdout
    lock = json.loads((INTEROP / "package-lock.json").read_text())
    pgboss = lock["packages"]["node_modules/pg-boss"]["version"]
    import procrastinate

    return {
        "cores": str(os.cpu_count()),
        "postgresql": str(row[0]) if row else "?",
        "node": node_v.strip(),
        "pg-boss": pgboss,
        "procrastinate": procrastinate.__version__,
        "python": sys.version.split()[0],
        "psycopg": psycopg.__version__,
    }


def fmt_rate(rate: float) -> str:
    return f"{rate:,.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000,1000000", help="cohort sizes, comma-separated")
    parser.add_argument(
        "--dsn",
        default=os.environ.get("SCHEDULER_TEST_ADMIN_DSN", "postgresql://root@127.0.0.1/postgres"),
        help="admin DSN; the scratch database is created and dropped on this server",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement (median is reported)")
    parser.add_argument(
        "--small-repeat",
        type=int,
        default=9,
        help=f"runs per measurement for cohorts of up to {SMALL:,} jobs, at least --repeat: they finish in "
        "a quarter of a second, where one hiccup of a small VM moves a median of 3",
    )
    parser.add_argument("--send-cap", type=int, default=10_000, help="jobs for the send() measurement")
    parser.add_argument("--dry-size", type=int, default=100_000, help="cohort size of the dry-run check")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(json.loads(args.child))
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    name = f"bench_fanout_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = dsn_for(args.dsn, name)
    try:
        return run_all(args, dsn, sizes)
    finally:
        with psycopg.connect(args.dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def repeats(args: argparse.Namespace, n: int) -> int:
    """How many times each method is measured for a cohort of `n`."""
    return max(args.repeat, args.small_repeat) if n <= SMALL else args.repeat


def run_all(args: argparse.Namespace, dsn: str, sizes: list[int]) -> int:
    import procrastinate

    node(
        str(INTEROP / "setup.mjs"),
        to_url(dsn),
        json.dumps([{"name": QUEUE, "options": {"policy": "stately"}}]),
    )
    app = procrastinate.App(connector=procrastinate.SyncPsycopgConnector(conninfo=dsn))
    with app.open():
        app.schema_manager.apply_schema()
    info = versions(dsn)
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench_fanout_"))
    config = workdir / "schedules.yaml"
    config.write_text(CONFIG)
    results: dict[int, dict[str, Measure]] = {}
    ours_extra: dict[int, dict[str, Any]] = {}
    send: Measure | None = None
    for n in sizes:
        print(f"\n== cohort of {n:,} ==", flush=True)
        fill_app_table(dsn, n)
        jobs = planned_jobs(n)
        jobs_file = workdir / f"jobs_{n}.json"
        write_pgboss_jobs(jobs, jobs_file)
        payload = copy_payload(dsn, jobs)
        del jobs
        m = {k: Measure(k, n) for k in ("ours", "insert", "procrastinate", "ours-procrastinate", "copy")}
        peak: list[dict[str, Any]] = []
        proc_peak: list[dict[str, Any]] = []
        for _ in range(repeats(args, n)):
            reset(dsn)
            result = run_ours(dsn, config, n)
            m["ours"].seconds.append(result["seconds"])
            peak.append(result)
            assert count_jobs(dsn)[0] == n
            reset(dsn)
            out = node(
                str(REPO / "benchmarks" / "bench_pgboss.mjs"), to_url(dsn), "insert", QUEUE, str(jobs_file)
            )
            m["insert"].seconds.append(out["ms"] / 1000)
            assert count_jobs(dsn)[0] == n, "pg-boss insert() wrote a different number of jobs"
            reset(dsn)
            m["procrastinate"].seconds.append(run_procrastinate(dsn, n))
            assert count_jobs(dsn)[1] == n
            reset(dsn)
            into_procrastinate = run_ours(dsn, config, n, schedule="digest-procrastinate")
            m["ours-procrastinate"].seconds.append(into_procrastinate["seconds"])
            proc_peak.append(into_procrastinate)
            assert count_jobs(dsn)[1] == n
            reset(dsn)
            m["copy"].seconds.append(run_copy(dsn, payload))
            assert count_jobs(dsn)[0] == n
            print(
                "  " + ", ".join(f"{k} {v.seconds[-1]:.3f}s" for k, v in m.items()),
                flush=True,
            )
        if send is None:
            cap = min(args.send_cap, n)
            send = Measure("send", cap)
            for _ in range(args.repeat):
                reset(dsn)
                out = node(
                    str(REPO / "benchmarks" / "bench_pgboss.mjs"),
                    to_url(dsn),
                    "send",
                    QUEUE,
                    str(jobs_file),
                    str(cap),
                )
                send.seconds.append(out["ms"] / 1000)
                send.extra = {"ok": out["ok"], "errors": out["errors"], "first_error": out["firstError"]}
                print(f"  send() x{cap}: {out}", flush=True)
        reset(dsn)
        results[n] = m
        ours_extra[n] = {
            "server_connections": max(p["server_connections"] for p in peak),
            "connections_used": max(p["connections_used"] for p in peak),
            "peak_rss_mb": max(p["peak_rss_kb"] for p in peak) / 1024,
            "vm_hwm_mb": max(p["vm_hwm_kb"] for p in peak) / 1024,
            "base_rss_mb": max(p["base_rss_kb"] for p in peak) / 1024,
            "proc_vm_hwm_mb": max(p["vm_hwm_kb"] for p in proc_peak) / 1024,
            "proc_server_connections": max(p["server_connections"] for p in proc_peak),
        }
        jobs_file.unlink()
        del payload

    dry: dict[str, float] | None = None
    if args.dry_size:
        fill_app_table(dsn, args.dry_size)
        reset(dsn)
        dry_runs, query_runs = [], []
        for _ in range(args.repeat):
            dry_runs.append(run_ours(dsn, config, args.dry_size, dry=True)["seconds"])
            query_runs.append(cohort_query_seconds(dsn))
        dry = {"dry": statistics.median(dry_runs), "query": statistics.median(query_runs)}

    print_report(args, info, results, ours_extra, send, dry)
    return 0


def print_report(
    args: argparse.Namespace,
    info: dict[str, str],
    results: dict[int, dict[str, Measure]],
    ours_extra: dict[int, dict[str, Any]],
    send: Measure | None,
    dry: dict[str, float] | None,
) -> None:
    print("\n## Results\n")
    print(
        f"command: .venv/bin/python benchmarks/fanout_throughput.py --sizes {args.sizes} --repeat {args.repeat}"
        f" --small-repeat {args.small_repeat}"
    )
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    counts = ", ".join(f"{n:,}: {repeats(args, n)}" for n in results)
    print(f"timings: median of the runs per cohort size ({counts}; send() and dry-run: {args.repeat})\n")
    print("| N | method | seconds | jobs/s | × COPY | × insert() | × send() | connections |")
    print("|---|---|---|---|---|---|---|---|")
    for n, m in results.items():
        copy = m["copy"].rate
        insert = m["insert"].rate
        send_rate = send.rate if send else float("nan")
        rows: list[tuple[str, Measure | None, str]] = [
            (
                "ours (fire)",
                m["ours"],
                f"{ours_extra[n]['server_connections']} (report: {ours_extra[n]['connections_used']})",
            ),
            ("pg-boss insert()", m["insert"], "pool (1 busy)"),
            (f"pg-boss send() ×{send.n if send else 0}", send, "pool max 10"),
            ("procrastinate batch_defer", m["procrastinate"], "1"),
            (
                "ours → procrastinate (fire)",
                m["ours-procrastinate"],
                f"{ours_extra[n]['proc_server_connections']}",
            ),
            ("raw COPY", m["copy"], "1"),
        ]
        for label, measure, conns in rows:
            if measure is None:
                continue
            rate = measure.rate
            print(
                f"| {n:,} | {label} | {measure.median:.3f} | {fmt_rate(rate)} | {rate / copy:.2f} | "
                f"{rate / insert:.2f} | {rate / send_rate:.1f} | {conns} |"
            )
    if send is not None:
        print(
            f"\nsend(): {send.n:,} jobs, {send.extra.get('ok')} ok, {send.extra.get('errors')} errors"
            + (f" (first: {send.extra['first_error']})" if send.extra.get("first_error") else "")
        )
    print("\n| N | ours peak RSS (ru_maxrss) MB | VmHWM MB | RSS after imports MB |")
    print("|---|---|---|---|")
    for n, extra in ours_extra.items():
        print(
            f"| {n:,} | {extra['peak_rss_mb']:.0f} | {extra['vm_hwm_mb']:.0f} | {extra['base_rss_mb']:.0f} |"
        )
    print("\n| N | ours → procrastinate × batch_defer | ours → procrastinate VmHWM MB |")
    print("|---|---|---|")
    for n, m in results.items():
        ratio = m["ours-procrastinate"].rate / m["procrastinate"].rate
        print(f"| {n:,} | {ratio:.2f} | {ours_extra[n]['proc_vm_hwm_mb']:.0f} |")
    if dry is not None:
        print(
            f"\ndry-run of {args.dry_size:,}: {dry['dry']:.3f}s; cohort query alone: {dry['query']:.3f}s; "
            f"ratio {dry['dry'] / dry['query']:.2f}×"
        )


if __name__ == "__main__":
    raise SystemExit(main())
