"""The sidecar's loop: APScheduler wakes one job per schedule at its next tick (and a poll job every
`catch_up_poll`); each wake-up runs a *pass* over that schedule: read the ledger, decide (`catchup.decide`,
pure), record skipped ticks, fan out the ticks to fire.

A fan-out is one transaction on one connection to the schedule's queue database:

1. `pg_try_advisory_xact_lock(schedule, tick)`: a replica never waits behind another's fan-out in flight;
2. claim the tick in the ledger (a new row, or a failed one); a done or skipped tick is lost: debug, move on;
3. `fanout_in_transaction` writes the jobs on the same connection;
4. fill in the counts, commit. Claim and jobs are visible together or not at all.

A failure (cohort query error, timeout, missing queue) rolls the transaction back and records the tick as
failed in a second transaction; the poll retries it with backoff while it is inside the catch-up window.
Every pass opens a fresh connection, so a restarted PostgreSQL costs one failed pass, not the process.

What goes to Sentry is listed in `runtime.sentry`: a failure that lasts (a database down, a watcher whose
queue is missing) sends one event when it starts (`_Reported`), not one per pass. Everything the service
writes out (log fields, the ledger's failure reasons, `/readyz`, the replica record) goes through its
`Redactor`, which learns the DSNs of each configuration it loads.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg
import sentry_sdk
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from scheduler.config.findings import ConfigInvalid
from scheduler.config.loader import LoadedConfig, load_config
from scheduler.errors import ConfigError, SchedulerError
from scheduler.fanout import Fanout, after_commit, default_backends, fanout_in_transaction
from scheduler.observe.events import fanout_event
from scheduler.observe.log import event
from scheduler.observe.redact import Environ, Redactor
from scheduler.planning.ticks import next_tick
from scheduler.runtime.catchup import Backoff, decide
from scheduler.runtime.databases import connect, ledger_databases
from scheduler.runtime.ledger import LATEST_VERSION, Ledger, ReplicaRecord
from scheduler.runtime.settings import ENV_PREFIX
from scheduler.watch.passes import aliases_once, watch_once
from scheduler.watch.plan import alias_every, alias_moves, watcher_database
from scheduler.watch.report import alias_events, watch_events
from scheduler.watch.report import record_metrics as record_watch_metrics

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence
    from pathlib import Path

    from scheduler.config.models import Config, Schedule
    from scheduler.observe.metrics import Metrics
    from scheduler.runtime.settings import Clock, Settings

_TRIGGER_SLACK_SECONDS = 0.005  # wake a hair after the tick, so the clock read in the pass is past it
_SCHEDULE_JOB = "schedule:"
_POLL_JOB = "catch-up-poll"
_WATCH_JOB = "watcher:"
_ALIAS_JOB = "aliases:"
_DATABASE = "database:"


class TickTrigger(BaseTrigger):  # type: ignore[misc]  # apscheduler ships no type hints
    """Fires at the schedule's next tick, computed by `planning.ticks.next_tick` (the function dry-run uses)."""

    def __init__(self, cron: str, timezone: str, clock: Clock) -> None:
        self.cron = cron
        self.timezone = timezone
        self.clock = clock

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime:
        after = now if previous_fire_time is None else max(previous_fire_time, now)
        tick = next_tick(self.cron, self.timezone, self.clock.to_schedule(after.timestamp()))
        return datetime.fromtimestamp(self.clock.to_real(tick) + _TRIGGER_SLACK_SECONDS, UTC)

    def __str__(self) -> str:
        return f"ticks[{self.cron} {self.timezone}]"


class _Refused(SchedulerError):
    """The new configuration is valid but would stop every schedule (see `Settings.allow_empty_reload`)."""

    def __init__(self, findings: list[str]) -> None:
        super().__init__(findings[0])
        self.findings = findings


@dataclass(frozen=True)
class ReloadFailure:
    """The last load that failed (cleared by a load that succeeds): when, and what was found."""

    at: datetime
    findings: tuple[str, ...]

    def summary(self) -> str:
        """`reload failed at <time>: <first finding>` (and how many more)."""
        more = f" (and {len(self.findings) - 1} more)" if len(self.findings) > 1 else ""
        first = self.findings[0] if self.findings else "no finding"
        return f"reload failed at {self.at.isoformat(timespec='seconds')}: {first}{more}"


class _TickFailed(SchedulerError):
    """The fan-out reported a failure; nothing of the tick was written."""


class _WatchFailed(SchedulerError):
    """A watcher pass reported a failure (its queue is missing); it wrote nothing."""


class _Reported:
    """The lasting failures already sent to Sentry: key (a database, a watcher) → what was reported, until
    the key succeeds again. So a database that stays down sends one event, not one per pass."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, str] = {}

    def first(self, key: str, what: str) -> bool:
        """Record that `key` fails with `what`; True when that is news (nothing, or something else, was
        reported for `key` since it last succeeded)."""
        with self._lock:
            if self._open.get(key) == what:
                return False
            self._open[key] = what
            return True

    def cleared(self, key: str) -> bool:
        """`key` succeeded; True when it had a failure reported (it has recovered)."""
        with self._lock:
            return self._open.pop(key, None) is not None


@dataclass
class _State:
    """One loaded configuration and what was built from it (swapped whole on reload)."""

    loaded: LoadedConfig
    fanout: Fanout
    databases: dict[str, list[str]]
    """Logical queue database → schedules whose ledger it holds."""
    loaded_at: datetime
    """When it was loaded (real time, for operators: `/readyz`, the replica record)."""
    migrated: set[str] = field(default_factory=set)


class Service:
    """Runs the schedules of one configuration until stopped; reloads on request."""

    def __init__(
        self,
        settings: Settings,
        paths: Sequence[Path],
        *,
        logger: logging.Logger,
        metrics: Metrics,
        clock: Clock,
        environ: Mapping[str, str],
        redactor: Redactor | None = None,
    ) -> None:
        self.settings = settings
        self.paths = list(paths)
        self.logger = logger
        self.metrics = metrics
        self.clock = clock
        self.environ = Environ(environ)
        """The process environment (DSNs are read from it); its repr shows only how many variables."""
        self.redactor = redactor if redactor is not None else Redactor.from_environ(environ)
        """Scrubs what the service writes out; shared with the logger and Sentry by `scheduler run`."""
        self._reported = _Reported()
        self.ledger = Ledger(settings.ledger_schema)
        self.backoff = Backoff(settings.retry_backoff, settings.retry_backoff_max)
        self.state: _State | None = None
        self.reload_failure: ReloadFailure | None = None
        """The last failed load, while no later one succeeded."""
        self._state_lock = threading.Lock()
        self._schedule_locks: dict[str, threading.Lock] = {}
        self._stopping = threading.Event()
        self._inflight = 0
        self._idle = threading.Condition()
        self._scheduler = BackgroundScheduler(
            timezone=UTC, executors={"default": ThreadPoolExecutor(max_workers=8)}
        )

    # -- configuration -------------------------------------------------------------------------------------

    def load(self) -> bool:
        """Load the schedule files and swap them in (and reschedule). True when the new configuration runs.

        Nothing that goes wrong here stops the running configuration: any exception while loading, checking,
        building the fan-out, finding the ledger databases, migrating or rescheduling is a failed reload. Its
        findings are logged (file:line:col where known), kept in `reload_failure` for `/readyz` and the
        replica record that `scheduler status` reads, and the old configuration keeps firing. A reload that
        would leave no enabled schedule while some run is refused the same way, unless
        `allow_empty_reload` is set.
        """
        previous = self.state
        try:
            state = self._prepare(previous)
            self._swap(previous, state)
        except _Refused as exc:
            return self._failed(exc.findings)
        except ConfigInvalid as exc:
            return self._failed([f.format() for f in exc.findings])
        except ConfigError as exc:
            return self._failed([_oneline(exc)])
        except Exception as exc:  # a bug in a parser or a model must not end the loop: keep the old config
            where = ", ".join(str(p) for p in self.paths)
            frames = traceback.extract_tb(exc.__traceback__)
            where_raised = f"{frames[-1].filename}:{frames[-1].lineno} {frames[-1].name}" if frames else None
            # one line (the full traceback goes to Sentry): a JSON log stream stays one object per line
            event(
                self.logger,
                logging.DEBUG,
                "config_load_error",
                error=type(exc).__name__,
                raised_at=where_raised,
            )
            sentry_sdk.capture_exception(exc)
            return self._failed([f"{where}: error: could not load: {type(exc).__name__}: {_oneline(exc)}"])
        self.reload_failure = None
        config = state.loaded.config
        enabled = sorted(n for n, s in config.schedules.items() if s.enabled)
        event(
            self.logger,
            logging.INFO if enabled or config.watchers else logging.WARNING,
            "config_loaded",
            files=[str(f) for f in state.loaded.files],
            schedules=enabled,
            ledger_databases=sorted(state.databases),
        )
        return True

    def _prepare(self, previous: _State | None) -> _State:
        """Everything a new configuration needs before it can replace the running one; raises what fails."""
        loaded = load_config(self.paths)
        config = loaded.config
        self.redactor.learn_config(config, self.environ)  # before anything that could quote a DSN
        enabled = [n for n, s in config.schedules.items() if s.enabled]
        running = (
            []
            if previous is None
            else sorted(n for n, s in previous.loaded.config.schedules.items() if s.enabled)
        )
        if running and not enabled and not self.settings.allow_empty_reload:
            where = ", ".join(str(f) for f in loaded.files) or ", ".join(str(p) for p in self.paths)
            raise _Refused(
                [
                    f"{where}: error: the new configuration has no enabled schedule, and {len(running)} run "
                    f"now ({', '.join(running[:5])}{', …' if len(running) > 5 else ''}); refused so that an "
                    "emptied file or directory cannot stop every schedule. To stop them all on purpose, set "
                    f"{ENV_PREFIX}ALLOW_EMPTY_RELOAD=true (or stop the sidecar)"
                ]
            )
        now = self.clock.now()
        for name in enabled:  # the triggers compute these; a schedule that cannot tick fails here, not later
            schedule = config.schedules[name]
            next_tick(schedule.cron, schedule.timezone, now)
        databases = ledger_databases(config)
        fanout = self._build_fanout(loaded)
        state = _State(loaded=loaded, fanout=fanout, databases=databases, loaded_at=self.clock.wall_now())
        for database in databases:
            self._migrate(state, database)  # an unreachable database is retried by its passes, not refused
        return state

    def _swap(self, previous: _State | None, state: _State) -> None:
        """Make `state` the running configuration; when rescheduling fails, put `previous` back and raise."""
        with self._state_lock:
            self.state = state
        if not self._scheduler.running:
            return
        try:
            self._reschedule()
        except Exception:
            with self._state_lock:
                self.state = previous
            if previous is not None:
                self._reschedule()
            raise

    def _failed(self, findings: list[str]) -> bool:
        """Log a failed load, remember it for `/readyz` and `status`; False."""
        findings = [self.redactor.text(f) for f in findings]
        for finding in findings:
            event(self.logger, logging.ERROR, "config_invalid", finding=finding)
        self.reload_failure = ReloadFailure(at=self.clock.wall_now(), findings=tuple(findings))
        self.metrics.count("config.reload_failed", 1)
        if self.state is not None:
            event(
                self.logger,
                logging.WARNING,
                "config_kept",
                files=[str(f) for f in self.state.loaded.files],
                loaded_at=self.state.loaded_at.isoformat(timespec="seconds"),
            )
        return False

    def _build_fanout(self, loaded: LoadedConfig) -> Fanout:
        return Fanout(
            loaded=loaded,
            environ=self.environ,
            backends=default_backends(),
            chunk_size=self.settings.chunk_size,
        )

    def _migrate(self, state: _State, database: str) -> bool:
        try:
            with connect(state.loaded.config, database, self.environ, self.settings.connect_timeout) as conn:
                applied = self.ledger.migrate(conn)
        except psycopg.Error as exc:
            event(self.logger, logging.WARNING, "ledger_unreachable", database=database, error=_oneline(exc))
            self._database_down(database, exc)
            return False
        self._database_up(database)
        state.migrated.add(database)
        if applied:
            event(
                self.logger,
                logging.INFO,
                "ledger_migrated",
                database=database,
                schema=self.ledger.schema,
                versions=[m.version for m in applied],
            )
        return True

    def watched_files(self) -> dict[str, int]:
        """Modification times of the loaded files and of any schedule file now under the given paths."""
        seen: dict[str, int] = {}
        files: list[Path] = list(self.state.loaded.files) if self.state else []
        for path in self.paths:
            try:
                if path.is_dir():
                    files.extend(p for p in path.iterdir() if p.suffix in {".yaml", ".yml"})
                else:
                    files.append(path)
            except OSError:  # gone or unreadable between two looks: the next load says what is wrong
                seen[str(path)] = -1
        for file in files:
            try:
                seen[str(file)] = file.stat().st_mtime_ns
            except OSError:
                seen[str(file)] = -1
        return seen

    # -- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the loop: one job per enabled schedule, plus the catch-up poll (which runs at once)."""
        self._scheduler.start(paused=True)
        self._reschedule()
        self._scheduler.add_job(
            self.poll,
            IntervalTrigger(seconds=max(0.05, self.settings.catch_up_poll.total_seconds()), timezone=UTC),
            id=_POLL_JOB,
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        self._scheduler.resume()

    def _reschedule(self) -> None:
        state = self.state
        assert state is not None
        wanted = {n: s for n, s in state.loaded.config.schedules.items() if s.enabled}
        for job in self._scheduler.get_jobs():
            if job.id.startswith(_SCHEDULE_JOB) and job.id[len(_SCHEDULE_JOB) :] not in wanted:
                job.remove()
        for name, schedule in sorted(wanted.items()):
            self._scheduler.add_job(
                self.run_pass,
                TickTrigger(schedule.cron, schedule.timezone, self.clock),
                args=[name],
                id=_SCHEDULE_JOB + name,
                replace_existing=True,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
            )
        self._reschedule_watchers(state)

    # -- watchers and aliases (scheduler.watch) -------------------------------------------------------------

    def _reschedule_watchers(self, state: _State) -> None:
        """One interval job per watcher (every `every`) and one alias pass per queue database with aliases."""
        config = state.loaded.config
        every: dict[str, tuple[Callable[[str], None], list[str], timedelta]] = {
            _WATCH_JOB + n: (self.run_watch, [n], w.every) for n, w in config.watchers.items()
        }
        for database in alias_moves(config):
            every[_ALIAS_JOB + database] = (self.run_aliases, [database], alias_every(config))
        for job in self._scheduler.get_jobs():
            if job.id.startswith((_WATCH_JOB, _ALIAS_JOB)) and job.id not in every:
                job.remove()
        for job_id, (func, args, interval) in sorted(every.items()):
            self._scheduler.add_job(
                func,
                IntervalTrigger(seconds=max(0.05, interval.total_seconds()), timezone=UTC),
                args=args,
                id=job_id,
                replace_existing=True,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
            )

    def run_watch(self, name: str) -> None:
        """One pass of watcher `name` (one replica at a time, under its advisory lock). Never raises."""
        state = self.state
        if state is None or self._stopping.is_set() or name not in state.loaded.config.watchers:
            return
        try:
            with self._busy():
                database = watcher_database(state.loaded.config, name)
                if database not in state.migrated and not self._migrate(state, database):
                    return
                result = watch_once(
                    state.fanout,
                    name,
                    self.clock.now(),
                    replica=self.settings.replica_id,
                    ledger_schema=self.ledger.schema,
                )
            for level, event_name, fields in watch_events(result):
                event(self.logger, level, event_name, **fields)
            self._database_up(database)
            failure = result.report.failure
            if failure:
                if self._reported.first(_WATCH_JOB + name, failure):
                    sentry_sdk.capture_exception(_WatchFailed(f"watcher {name!r}: {failure}"))
            else:
                self._reported.cleared(_WATCH_JOB + name)
                record_watch_metrics(self.metrics, result)
        except psycopg.OperationalError as exc:
            event(self.logger, logging.WARNING, "database_unreachable", watcher=name, error=_oneline(exc))
            self._database_down(watcher_database(state.loaded.config, name), exc)
        except Exception as exc:
            self.logger.exception("watch_failed", extra={"fields": {"watcher": name}})
            sentry_sdk.capture_exception(exc)

    def run_aliases(self, database: str) -> None:
        """Move the jobs waiting on aliased old queue names in `database` to their targets. Never raises."""
        state = self.state
        if state is None or self._stopping.is_set():
            return
        try:
            with self._busy():
                result = aliases_once(state.fanout, database, ledger_schema=self.ledger.schema)
            for level, event_name, fields in alias_events(result):
                event(self.logger, level, event_name, **fields)
        except Exception as exc:
            self.logger.exception("aliases_failed", extra={"fields": {"database": database}})
            sentry_sdk.capture_exception(exc)

    def stop(self, grace: timedelta) -> bool:
        """Start no new pass; let the one in flight finish within `grace`. True when nothing was left running."""
        self._stopping.set()
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        with self._idle:
            return self._idle.wait_for(lambda: self._inflight == 0, timeout=grace.total_seconds())

    @contextmanager
    def _busy(self) -> Iterator[None]:
        with self._idle:
            self._inflight += 1
        try:
            yield
        finally:
            with self._idle:
                self._inflight -= 1
                self._idle.notify_all()

    # -- passes ---------------------------------------------------------------------------------------------

    def poll(self) -> None:
        """One pass over every enabled schedule (missed, failed or abandoned ticks), then the replica record."""
        state = self.state
        if state is None:
            return
        for names in state.databases.values():
            for name in names:
                if self._stopping.is_set():
                    return
                self.run_pass(name)
        self.record_replica()  # after the passes: a database that is down delays the record, not the ticks

    def run_pass(self, name: str) -> None:
        """Read the ledger of `name`, decide, record skips, fan out what is due. Never raises."""
        state = self.state
        if state is None or self._stopping.is_set():
            return
        schedule = state.loaded.config.schedules.get(name)
        if schedule is None or not schedule.enabled:
            return
        lock = self._schedule_locks.setdefault(name, threading.Lock())
        if not lock.acquire(blocking=False):
            return  # a pass of this schedule is already running in this process
        try:
            with self._busy():
                self._pass(state, name, schedule)
        except psycopg.OperationalError as exc:
            event(self.logger, logging.WARNING, "database_unreachable", schedule=name, error=_oneline(exc))
            self._database_down(_database_of(state, name), exc)
        except Exception as exc:
            self.logger.exception("pass_failed", extra={"fields": {"schedule": name}})
            sentry_sdk.capture_exception(exc)
        finally:
            lock.release()

    def _database_down(self, database: str, exc: BaseException) -> None:
        """`database` could not be reached (or migrated): to Sentry when it was up (or not yet known)."""
        if self._reported.first(_DATABASE + database, "down"):
            sentry_sdk.capture_exception(exc)

    def _database_up(self, database: str) -> None:
        """`database` answered: after an outage, one info line (its next outage is news again)."""
        if self._reported.cleared(_DATABASE + database):
            event(self.logger, logging.INFO, "database_reachable", database=database)

    def _pass(self, state: _State, name: str, schedule: Schedule) -> None:
        database = _database_of(state, name)
        if database not in state.migrated and not self._migrate(state, database):
            return
        with connect(state.loaded.config, database, self.environ, self.settings.connect_timeout) as conn:
            self._database_up(database)
            now = self.clock.now()
            with conn.transaction():
                since = self.ledger.horizon(conn, name, now)
                rows = self.ledger.rows_since(conn, name, since)
            decision = decide(
                schedule,
                now=now,
                since=since,
                rows=rows,
                on_time=self.settings.on_time,
                backoff=self.backoff,
            )
            if decision.skip:
                with conn.transaction():
                    recorded = self.ledger.skip_many(conn, name, decision.skip, self.settings.replica_id, now)
                reasons = dict(decision.skip)
                for tick in recorded:
                    event(
                        self.logger,
                        logging.WARNING,
                        "tick_skipped",
                        schedule=name,
                        tick=tick.isoformat(),
                        reason=reasons[tick].value,
                        window=str(schedule.catch_up.window),
                        policy=schedule.catch_up.policy.value,
                    )
                    self.metrics.count("tick.completed", 1, {"schedule": name, "outcome": "skipped"})
            for tick in decision.fire:
                if self._stopping.is_set():
                    break
                self._fire(conn, state, name, schedule, tick)
            with conn.transaction():
                self.ledger.advance(conn, name, decision.horizon)

    def _lost(self, name: str, tick: datetime, why: str) -> None:
        """Another replica has this tick (in flight, or done): a debug line, nothing else."""
        event(self.logger, logging.DEBUG, "tick_lost", schedule=name, tick=tick.isoformat(), why=why)

    def _fire(
        self, conn: psycopg.Connection[Any], state: _State, name: str, schedule: Schedule, tick: datetime
    ) -> None:
        started = self.clock.now()
        replica = self.settings.replica_id
        try:
            with conn.transaction():
                if not self.ledger.try_lock(conn, name, tick):
                    self._lost(name, tick, "in_flight")
                    return
                attempt = self.ledger.claim(conn, name, tick, replica, started)
                if attempt is None:
                    self._lost(name, tick, "done")
                    return
                result = fanout_in_transaction(state.fanout, conn, name, tick)
                report = result.report
                if report.failure is not None:
                    raise _TickFailed(report.failure)
                self.ledger.finish(conn, name, tick, report, self.clock.now())
                self._pause_before_commit(name, tick)
        except Exception as exc:  # any failure of the tick is recorded; a dead connection ends the pass
            if conn.broken or (isinstance(exc, psycopg.OperationalError) and conn.closed):
                raise
            self._record_failure(conn, name, tick, started, exc)
            return
        committed = self.clock.now()
        after_commit(state.fanout, conn, result)
        level, name_of_event, fields = fanout_event(report, schedule.expected_drops)
        event(self.logger, level, name_of_event, attempt=attempt, replica=replica, **fields)
        self.metrics.record_fanout(report)
        self.metrics.record_stagger(name, list(result.preview.stagger_samples))
        self.metrics.count("tick.completed", 1, {"schedule": name, "outcome": "done"})
        self.metrics.distribution(
            "tick.lag", max(0.0, (committed - tick).total_seconds()), "second", {"schedule": name}
        )

    def _pause_before_commit(self, name: str, tick: datetime) -> None:
        pause = self.settings.test_pause_before_commit
        if pause > 0:
            event(
                self.logger,
                logging.INFO,
                "tick_paused_before_commit",
                schedule=name,
                tick=tick.isoformat(),
                seconds=pause,
            )
            time.sleep(pause)

    def _record_failure(
        self, conn: psycopg.Connection[Any], name: str, tick: datetime, started: datetime, exc: Exception
    ) -> None:
        reason = self.redactor.text(_oneline(exc))  # the ledger's reason is shown by `status`
        attempts = self.ledger.fail(
            conn,
            name,
            tick,
            reason=reason,
            replica=self.settings.replica_id,
            started_at=started,
            now=self.clock.now(),
        )
        event(
            self.logger,
            logging.ERROR,
            "tick_failed",
            schedule=name,
            tick=tick.isoformat(),
            reason=reason,
            attempt=attempts,
            error=type(exc).__name__,
        )
        self.metrics.count("tick.completed", 1, {"schedule": name, "outcome": "failed"})
        sentry_sdk.capture_exception(exc)

    # -- readiness ------------------------------------------------------------------------------------------

    def readiness(self, databases: Mapping[str, str] | None) -> tuple[bool, dict[str, Any]]:
        """/readyz from the latest `database_checks` (None: none finished yet) and the live config state.

        Ready when a configuration runs and every database check is "ok". A failed reload does not make the
        replica unready: the configuration it runs is still valid and firing (and every replica reading the
        same ConfigMap fails the same reload, so 503 would take them all out); `checks.config` says it failed.
        """
        state = self.state
        if state is None:
            return False, {"config": "not loaded"}
        failure = self.reload_failure
        checks: dict[str, Any] = {"config": "loaded" if failure is None else failure.summary()}
        if databases is None:
            checks["databases"] = "not checked yet"
            return False, checks
        checks.update(databases)
        redacted: dict[str, Any] = self.redactor.value(checks)
        return all(v == "ok" for v in databases.values()), redacted

    def database_checks(self) -> dict[str, str]:
        """Every queue database reachable with its ledger at the latest version, and every app database that
        a cohort query reads reachable: database → "ok" or why not. Opens one connection per database (the
        health server runs this from one background thread, at most once per `readiness_interval`).
        """
        state = self.state
        if state is None:
            return {}
        config = state.loaded.config

        def ledger_check(conn: psycopg.Connection[Any]) -> str:
            version = self.ledger.version(conn)
            return (
                "ok"
                if version == LATEST_VERSION
                else f"ledger at version {version}, expected {LATEST_VERSION}"
            )

        def reachable(conn: psycopg.Connection[Any]) -> str:
            conn.execute("SELECT 1")
            return "ok"

        checks: dict[str, str] = {}
        for database in sorted(state.databases):
            checks[database] = self._probe(config, database, ledger_check)
        for database in sorted(_cohort_databases(config) - set(state.databases)):
            checks[database] = self._probe(config, database, reachable)
        return checks

    def _probe(self, config: Config, database: str, check: Callable[[psycopg.Connection[Any]], str]) -> str:
        """`check` on a short-lived connection to `database`: its verdict, or why it could not be reached."""
        try:
            with connect(config, database, self.environ, timeout=2) as conn:
                return check(conn)
        except (psycopg.Error, ConfigError) as exc:
            return f"unreachable: {_oneline(exc)}"

    # -- the replica record (read by `scheduler status`) -----------------------------------------------------

    def record_replica(self) -> None:
        """Write this replica's record (its configuration, its last failed reload) into the ledger of each
        queue database it runs; called by every catch-up poll, so `seen_at` is a heartbeat. Never raises.
        """
        state = self.state
        if state is None:
            return
        failure = self.reload_failure
        record = ReplicaRecord(
            replica=self.settings.replica_id,
            seen_at=self.clock.wall_now(),
            seen_every=self.settings.catch_up_poll,
            loaded_at=state.loaded_at,
            files=tuple(str(f) for f in state.loaded.files),
            schedules=tuple(sorted(n for n, s in state.loaded.config.schedules.items() if s.enabled)),
            reload_failed_at=failure.at if failure else None,
            reload_error="\n".join(failure.findings) if failure else None,
        )
        for database in sorted(state.migrated & set(state.databases)):
            if self._stopping.is_set():
                return
            try:
                with connect(
                    state.loaded.config, database, self.environ, self.settings.connect_timeout
                ) as conn:
                    self.ledger.record_replica(conn, record)
            except Exception as exc:  # the record is a report; failing to write it changes nothing else
                event(
                    self.logger,
                    logging.DEBUG,
                    "replica_record_failed",
                    database=database,
                    error=_oneline(exc),
                )


def _database_of(state: _State, schedule: str) -> str:
    """The queue database holding `schedule`'s ledger."""
    return next(db for db, names in state.databases.items() if schedule in names)


def _cohort_databases(config: Config) -> set[str]:
    """The app databases that enabled schedules' SQL cohorts read (a tick fails while one is unreachable)."""
    return {s.cohort.database for s in config.schedules.values() if s.enabled and s.cohort.sql is not None}


def _oneline(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
