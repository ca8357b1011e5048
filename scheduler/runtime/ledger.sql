-- The ledger: one row per claimed (or skipped) tick of each schedule, in the queue database, in a schema
-- of our own (`{schema}`, default `scheduler`). Tables are created by the versioned steps of
-- migrations.sql; this file holds the bootstrap DDL and the statements the runtime uses.

-- name: migration_bootstrap :ddl
-- Create the ledger's schema and its table of applied migration steps (idempotent).
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.migration (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- name: migration_lock :none
-- Serialize migrations across replicas for the rest of the transaction (released at commit or rollback).
SELECT pg_advisory_xact_lock(hashtextextended(%(key)s, 0));

-- name: migration_record :none
-- Record one applied migration step.
INSERT INTO {schema}.migration (version, name) VALUES (%(version)s, %(name)s);

-- name: migration_version :one
-- The newest applied migration step, or NULL when the ledger does not exist.
SELECT max(version) FROM {schema}.migration;

-- name: replica_list :many
-- Every replica's record, live ones (seen within three heartbeats and a minute) first, newest heartbeat first.
SELECT replica, seen_at, seen_every, loaded_at, files, schedules, reload_failed_at, reload_error,
       seen_at >= %(now)s - (seen_every * 3 + interval '1 minute') AS live
FROM {schema}.replica
ORDER BY live DESC, seen_at DESC, replica;

-- name: replica_prune :none
-- Forget the records of replicas not seen for a week (pods come and go; their names do not come back).
DELETE FROM {schema}.replica WHERE seen_at < %(now)s - interval '7 days';

-- name: replica_record :none
-- Write one replica's record (its heartbeat, its configuration, its last failed reload or NULL).
INSERT INTO {schema}.replica
    (replica, seen_at, seen_every, loaded_at, files, schedules, reload_failed_at, reload_error)
VALUES (%(replica)s, %(seen_at)s, %(seen_every)s, %(loaded_at)s, %(files)s, %(schedules)s,
        %(reload_failed_at)s, %(reload_error)s)
ON CONFLICT (replica) DO UPDATE SET
    seen_at = excluded.seen_at,
    seen_every = excluded.seen_every,
    loaded_at = excluded.loaded_at,
    files = excluded.files,
    schedules = excluded.schedules,
    reload_failed_at = excluded.reload_failed_at,
    reload_error = excluded.reload_error;

-- name: schedule_state_advance :none
-- Move a schedule's horizon forward (never back: a replica with a slower clock cannot undo another's pass).
UPDATE {schema}.schedule_state
SET horizon = greatest(horizon, %(horizon)s)
WHERE schedule = %(schedule)s;

-- name: schedule_state_ensure :one
-- A schedule's horizon; the first replica to see the schedule sets it (and first_seen) to its `now`.
WITH inserted AS (
    INSERT INTO {schema}.schedule_state (schedule, first_seen, horizon)
    VALUES (%(schedule)s, %(now)s, %(now)s)
    ON CONFLICT (schedule) DO NOTHING
    RETURNING horizon
)
SELECT horizon FROM inserted
UNION ALL
SELECT horizon FROM {schema}.schedule_state WHERE schedule = %(schedule)s
LIMIT 1;

-- name: schedule_state_get :one
-- A schedule's horizon, read in a snapshot of its own (after `schedule_state_ensure` lost the race).
SELECT horizon FROM {schema}.schedule_state WHERE schedule = %(schedule)s;

-- name: tick_claim :one
-- Claim a tick for this transaction: a new row, or one whose outcome is in `over` (the sidecar: failed, a
-- retry; `scheduler fire`: failed or skipped, and done too with --force). Any other row returns no row: the
-- caller lost and writes nothing. Callers take `tick_lock` first, so this never waits behind another
-- replica's uncommitted claim of the same tick.
INSERT INTO {schema}.tick AS t (schedule, tick, outcome, replica, attempts, started_at, fired_by)
VALUES (%(schedule)s, %(tick)s, 'done', %(replica)s, 1, %(now)s, %(fired_by)s)
ON CONFLICT (schedule, tick) DO UPDATE
SET outcome = 'done', reason = NULL, replica = excluded.replica, attempts = t.attempts + 1,
    started_at = excluded.started_at, finished_at = NULL, fired_by = excluded.fired_by
WHERE t.outcome = ANY (%(over)s::text[])
RETURNING attempts;

-- name: tick_fail :one
-- Record a failed tick (nothing enqueued) with its reason; never overwrites a done or skipped tick.
INSERT INTO {schema}.tick AS t (schedule, tick, outcome, reason, replica, attempts, started_at, finished_at)
VALUES (%(schedule)s, %(tick)s, 'failed', %(reason)s, %(replica)s, 1, %(started_at)s, %(now)s)
ON CONFLICT (schedule, tick) DO UPDATE
SET reason = excluded.reason, replica = excluded.replica, attempts = t.attempts + 1,
    started_at = excluded.started_at, finished_at = excluded.finished_at
WHERE t.outcome = 'failed'
RETURNING attempts;

-- name: tick_finish :none
-- Fill in the counts of a claimed tick, in the claim's transaction, just before it commits.
UPDATE {schema}.tick
SET finished_at = %(now)s, accepted = %(accepted)s, dropped = %(dropped)s,
    dropped_by_reason = %(dropped_by_reason)s, duration_ms = %(duration_ms)s
WHERE schedule = %(schedule)s AND tick = %(tick)s;

-- name: tick_get :one
-- One tick's row (why a claim lost: who fanned it out, when, with what counts).
SELECT schedule, tick, outcome, reason, replica, attempts, started_at, finished_at, accepted, dropped,
       dropped_by_reason, fired_by
FROM {schema}.tick
WHERE schedule = %(schedule)s AND tick = %(tick)s;

-- name: tick_list_since :many
-- A schedule's ledger rows from its horizon on, oldest first (what a catch-up decision reads).
SELECT tick, outcome, attempts, finished_at
FROM {schema}.tick
WHERE schedule = %(schedule)s AND tick >= %(since)s
ORDER BY tick;

-- name: tick_lock :one
-- Try to lock one (schedule, tick) for this transaction without waiting: a replica never queues behind
-- another's fan-out in flight, it moves on.
SELECT pg_try_advisory_xact_lock(hashtextextended(%(key)s, 0));

-- name: tick_recent_many :many
-- The newest rows of each schedule, newest first (for `scheduler status`). `fired_by` is read through the
-- row's JSON so a ledger before migration step 5 (no such column: every tick was the sidecar's) reads too:
-- status never migrates.
SELECT s.schedule, t.tick, t.outcome, t.reason, t.replica, t.attempts, t.started_at, t.finished_at,
       t.accepted, t.dropped, t.dropped_by_reason, coalesce(to_jsonb(t) ->> 'fired_by', 'scheduled')
FROM unnest(%(schedules)s::text[]) AS s (schedule)
CROSS JOIN LATERAL (
    SELECT * FROM {schema}.tick AS x WHERE x.schedule = s.schedule ORDER BY x.tick DESC LIMIT %(limit)s
) AS t
ORDER BY s.schedule, t.tick DESC;

-- name: tick_skip_many :many
-- Record ticks as skipped (too old, or left out by the catch-up policy); ticks that already have a row
-- keep it. Returns the ticks recorded.
INSERT INTO {schema}.tick (schedule, tick, outcome, reason, replica, attempts, started_at, finished_at)
SELECT %(schedule)s, u.tick, 'skipped', u.reason, %(replica)s, 0, %(now)s, %(now)s
FROM unnest(%(ticks)s::timestamptz[], %(reasons)s::text[]) AS u (tick, reason)
ON CONFLICT (schedule, tick) DO NOTHING
RETURNING tick;
