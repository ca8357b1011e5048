-- Statements of the watcher and alias passes. `{schema}` is the ledger's schema, `{pgboss}` pg-boss's
-- schema; both are filled only through psycopg.sql.Identifier. Every value is bound. procrastinate's
-- tables are named unqualified (they resolve through search_path, as in its backend).
-- Facts behind them: /work/shared/research/pgboss.md §1, §3 and procrastinate.md §1, §2.

-- name: pass_lock :one
-- Try to take the pass of one watcher (or the alias pass) for this transaction, without waiting: exactly one
-- replica runs a given pass at a time, the others skip it.
SELECT pg_try_advisory_xact_lock(hashtextextended(%(key)s, 0));

-- name: reemit_count_many :many
-- How many times each entity was re-emitted by this watcher since the window's start.
SELECT r.entity, count(*)::int AS n
FROM {schema}.reemit AS r
WHERE r.watcher = %(watcher)s AND r.entity = ANY(%(entities)s::text[]) AND r.at >= %(since)s
  AND r.kind = 'reemit'
GROUP BY r.entity;

-- name: reemit_exhausted_reported_many :many
-- The entities whose exhaustion this watcher already reported since the window's start (reported once per
-- window: a later pass leaves them alone quietly).
SELECT DISTINCT r.entity
FROM {schema}.reemit AS r
WHERE r.watcher = %(watcher)s AND r.entity = ANY(%(entities)s::text[]) AND r.at >= %(since)s
  AND r.kind = 'exhausted';

-- name: reemit_exhausted_record_many :none
-- Record that the exhaustion of these entities was reported (no job), in the pass's transaction.
INSERT INTO {schema}.reemit (watcher, entity, at, queue, job_id, replica, kind)
SELECT %(watcher)s, u.entity, %(now)s, u.queue, NULL, %(replica)s, 'exhausted'
FROM unnest(%(entities)s::text[], %(queues)s::text[]) AS u (entity, queue);

-- name: ledger_ready :one
-- Whether the ledger's reemit table exists with its `kind` column (a dry pass reads it, never creates it).
SELECT count(*) = 1
FROM pg_catalog.pg_attribute AS a
WHERE a.attrelid = to_regclass(%(reemit)s) AND a.attname = 'kind' AND NOT a.attisdropped;

-- name: reemit_record_many :none
-- Record one re-emit per accepted job, in the pass's transaction.
INSERT INTO {schema}.reemit (watcher, entity, at, queue, job_id, replica)
SELECT %(watcher)s, u.entity, %(now)s, u.queue, u.job_id, %(replica)s
FROM unnest(%(entities)s::text[], %(queues)s::text[], %(job_ids)s::text[]) AS u (entity, queue, job_id);

-- name: reemit_prune :none
-- Forget this watcher's re-emits older than its window (they no longer count).
DELETE FROM {schema}.reemit WHERE watcher = %(watcher)s AND at < %(since)s;

-- name: pgboss_stalled_many :many
-- Jobs of a pg-boss queue that no worker is running any more: `active`, and either their heartbeat is older
-- than heartbeat_seconds (a worker that heartbeats died) or started_on + expire_seconds has passed (the
-- worker never finished). `grace` (the watcher's stuck_after) is added to both, so a slow worker is left be.
SELECT j.id::text AS id, j.singleton_key, j.data, j.priority, j.state::text AS state
FROM {pgboss}.job AS j
WHERE j.name = %(name)s
  AND j.state = 'active'
  AND (
    (j.heartbeat_seconds IS NOT NULL
     AND COALESCE(j.heartbeat_on, j.started_on) + j.heartbeat_seconds * interval '1 second' + %(grace)s < %(now)s)
    OR j.started_on + j.expire_seconds * interval '1 second' + %(grace)s < %(now)s
  )
ORDER BY j.started_on, j.id
LIMIT %(limit)s;

-- name: procrastinate_stalled_many :many
-- Jobs of a procrastinate queue that no worker is running any more: `doing`, and its worker is gone
-- (worker_id NULL: pruned, ON DELETE SET NULL) or its worker's last_heartbeat is older than `grace`.
SELECT j.id::text AS id, j.queueing_lock AS singleton_key, j.args AS data, j.priority, j.status::text AS state
FROM procrastinate_jobs AS j
LEFT JOIN procrastinate_workers AS w ON w.id = j.worker_id
WHERE j.queue_name = %(name)s
  AND j.status = 'doing'
  AND (j.worker_id IS NULL OR w.last_heartbeat + %(grace)s < %(now)s)
ORDER BY j.id
LIMIT %(limit)s;

-- name: pgboss_alias_move_many :many
-- Move the waiting (created, retry) jobs of an old queue name to the target queue in one statement: each is
-- inserted into the target with the same id, payload, singleton key, start_after, priority and created_on,
-- and the target queue's policy (so its unique indexes decide: ON CONFLICT DO NOTHING); only the rows that
-- went in are deleted from the old name. A row that collided stays where it was and comes back moved=false.
-- Rows locked by a worker fetching them right now are skipped (FOR UPDATE SKIP LOCKED) and not reported.
WITH waiting AS (
    SELECT j.*
    FROM {pgboss}.job AS j
    WHERE j.name = %(old)s AND j.state IN ('created', 'retry')
    ORDER BY COALESCE(j.singleton_key, ''), j.created_on, j.id
    FOR UPDATE SKIP LOCKED
),
moved AS (
    INSERT INTO {pgboss}.job (
      id, name, data, priority, state, retry_count, start_after, created_on, singleton_key, singleton_on,
      retry_limit, retry_delay, retry_backoff, retry_delay_max, expire_seconds, deletion_seconds,
      keep_until, policy, dead_letter, heartbeat_seconds
    )
    SELECT
      w.id, q.name, w.data, w.priority, w.state, w.retry_count, w.start_after, w.created_on, w.singleton_key,
      w.singleton_on, w.retry_limit, w.retry_delay, w.retry_backoff, w.retry_delay_max, w.expire_seconds,
      w.deletion_seconds, w.keep_until, q.policy, q.dead_letter, q.heartbeat_seconds
    FROM waiting AS w
    JOIN {pgboss}.queue AS q ON q.name = %(new)s
    ORDER BY COALESCE(w.singleton_key, ''), w.created_on, w.id
    ON CONFLICT DO NOTHING
    RETURNING id
),
deleted AS (
    DELETE FROM {pgboss}.job AS j
    USING moved
    WHERE j.name = %(old)s AND j.id = moved.id
    RETURNING j.id
)
SELECT w.id::text AS id, w.singleton_key, (d.id IS NOT NULL) AS moved
FROM waiting AS w
LEFT JOIN deleted AS d ON d.id = w.id
ORDER BY w.created_on, w.id;

-- name: procrastinate_alias_move_many :many
-- Move the waiting (todo) jobs of an old queue name to the target queue in one statement. The queueing_lock
-- index spans every queue (UNIQUE (queueing_lock) WHERE status = 'todo'), so renaming the queue cannot
-- collide: every row moves. Payload, task, lock, queueing_lock, scheduled_at and priority are unchanged.
UPDATE procrastinate_jobs
SET queue_name = %(new)s
WHERE queue_name = %(old)s AND status = 'todo'
RETURNING id::text AS id, queueing_lock AS singleton_key, true AS moved;
