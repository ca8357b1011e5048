-- Statements the pg-boss 12 adapter runs against pg-boss's own tables (schema version 46).
-- `{schema}` is pg-boss's schema, filled only through psycopg.sql.Identifier; every value is bound.
-- Facts behind each statement: /work/shared/research/pgboss.md (§1 indexes, §3 direct SQL).

-- name: job_holder_created_many :many
-- For each slot key, the `created` job holding it under a short or stately queue (indexes i1, i3).
-- The holder's own `policy` column must match: the partial unique indexes test the row, not the queue.
-- One index probe per slot (LATERAL … LIMIT 1; the index is unique, so at most one row matches): as a
-- plain join the planner, which guesses a hundred slots, scans or merges the whole queue (0.3 s per 5,000
-- slots against 1M waiting jobs, against 0.03 s).
SELECT k.slot, j.id::text AS id, j.state::text AS state
FROM jsonb_array_elements_text(%(slots)s::jsonb) AS k (slot)
CROSS JOIN LATERAL (
  SELECT id, state FROM {schema}.job
  WHERE name = %(name)s
    AND policy = %(policy)s
    AND state = 'created'
    AND COALESCE(singleton_key, '') = k.slot
  LIMIT 1
) AS j

-- name: job_holder_live_many :many
-- For each slot key, the created, retry or active job holding it under an exclusive queue (index i6),
-- one index probe per slot as above.
SELECT k.slot, j.id::text AS id, j.state::text AS state
FROM jsonb_array_elements_text(%(slots)s::jsonb) AS k (slot)
CROSS JOIN LATERAL (
  SELECT id, state FROM {schema}.job
  WHERE name = %(name)s
    AND policy = %(policy)s
    AND state <= 'active'
    AND COALESCE(singleton_key, '') = k.slot
  LIMIT 1
) AS j

-- name: job_held_created_all :many
-- Every slot a new row could hit under a short or stately queue, with the `created` job holding it, read
-- once as a fan-out begins (before it writes anything, so the planner's statistics still describe the
-- table; the policy's partial index i1 or i3); at most %(limit)s rows.
SELECT COALESCE(singleton_key, '') AS slot, id::text AS id, state::text AS state
FROM {schema}.job
WHERE name = %(name)s
  AND policy = %(policy)s
  AND state = 'created'
LIMIT %(limit)s

-- name: job_held_live_all :many
-- The same for an exclusive queue: the created, retry or active job holding each slot (index i6).
SELECT COALESCE(singleton_key, '') AS slot, id::text AS id, state::text AS state
FROM {schema}.job
WHERE name = %(name)s
  AND policy = %(policy)s
  AND state <= 'active'
LIMIT %(limit)s

-- name: job_insert_many :many
-- Insert one job per array element in input order, copying the queue's settings the way pg-boss's own
-- insert does; a row that hits a policy index is skipped (ON CONFLICT with no target) and not returned.
-- Rows go in sorted by slot key, so two fan-outs over overlapping keys wait on each other in one order
-- and never deadlock; within a slot, input order (ord) decides, so the first row of a shared slot lands.
-- created_on uses pg-boss's job_now() (now(), unless a pg-boss test clock overrides it), like send().
INSERT INTO {schema}.job (
  id, name, data, priority, state, start_after, created_on, singleton_key,
  retry_limit, retry_delay, retry_backoff, retry_delay_max, expire_seconds, deletion_seconds,
  keep_until, policy, dead_letter, heartbeat_seconds
)
SELECT
  r.id, q.name, r.data::jsonb, r.priority, 'created', r.start_after, {schema}.job_now(), r.singleton_key,
  COALESCE(r.retry_limit, q.retry_limit), COALESCE(r.retry_delay, q.retry_delay), q.retry_backoff,
  q.retry_delay_max, COALESCE(r.expire_seconds, q.expire_seconds), q.deletion_seconds,
  r.start_after + q.retention_seconds * interval '1 second', q.policy, q.dead_letter, q.heartbeat_seconds
FROM unnest(
  %(ids)s::uuid[], %(data)s::text[], %(priorities)s::int[], %(start_afters)s::timestamptz[],
  %(singleton_keys)s::text[], %(retry_limits)s::int[], %(retry_delays)s::int[], %(expire_seconds)s::int[]
) WITH ORDINALITY AS r (id, data, priority, start_after, singleton_key, retry_limit, retry_delay, expire_seconds, ord)
JOIN {schema}.queue q ON q.name = %(name)s
ORDER BY COALESCE(r.singleton_key, ''), r.ord
ON CONFLICT DO NOTHING
RETURNING id::text

-- name: job_insert_staged_many :many
-- The COPY path: the same insert as job_insert_many (same order and settings), reading the staging table.
-- A plain COPY into the job table would abort on the first policy conflict.
INSERT INTO {schema}.job (
  id, name, data, priority, state, start_after, created_on, singleton_key,
  retry_limit, retry_delay, retry_backoff, retry_delay_max, expire_seconds, deletion_seconds,
  keep_until, policy, dead_letter, heartbeat_seconds
)
SELECT
  r.id, q.name, r.data, r.priority, 'created', r.start_after, {schema}.job_now(), r.singleton_key,
  COALESCE(r.retry_limit, q.retry_limit), COALESCE(r.retry_delay, q.retry_delay), q.retry_backoff,
  q.retry_delay_max, COALESCE(r.expire_seconds, q.expire_seconds), q.deletion_seconds,
  r.start_after + q.retention_seconds * interval '1 second', q.policy, q.dead_letter, q.heartbeat_seconds
FROM {staging} r
JOIN {schema}.queue q ON q.name = %(name)s
ORDER BY COALESCE(r.singleton_key, ''), r.ord
ON CONFLICT DO NOTHING
RETURNING id::text

-- name: job_staging_copy
-- Fill the staging table (COPY … FROM STDIN, text format; psycopg encodes each value).
COPY {staging} (ord, id, data, priority, start_after, singleton_key, retry_limit, retry_delay, expire_seconds)
FROM STDIN

-- name: job_staging_create
-- The session's staging table for the COPY path. It outlives the transaction on purpose: ON COMMIT DROP
-- would vanish between statements on an autocommit connection. It is emptied before and after each use.
CREATE TEMPORARY TABLE IF NOT EXISTS {staging} (
  ord bigint NOT NULL,
  id uuid NOT NULL,
  data jsonb NOT NULL,
  priority int NOT NULL,
  start_after timestamptz NOT NULL,
  singleton_key text,
  retry_limit int,
  retry_delay int,
  expire_seconds int
)

-- name: job_staging_truncate
-- Empty the staging table.
TRUNCATE {staging}

-- name: queue_create
-- Create a queue through pg-boss's own function (idempotent); `options` carries an explicit policy.
SELECT {schema}.create_queue(%(name)s, %(options)s::jsonb)

-- name: queue_create_lock
-- pg-boss's create-queue advisory lock: sha224 of "<database>.pgboss.<schema>create-queue", first 64 bits.
-- Held to the end of the transaction, so a concurrent pg-boss createQueue() (and its partition DDL) waits.
SELECT pg_advisory_xact_lock(
  ('x' || encode(sha224((current_database() || '.pgboss.' || %(schema)s::text || 'create-queue')::bytea), 'hex'))::bit(64)::bigint
)

-- name: queue_get
-- The live queue row: policy and the settings each new job copies.
SELECT name, policy, retry_limit, retry_delay, expire_seconds, notify
FROM {schema}.queue
WHERE name = %(name)s

-- name: queue_settings_get
-- Everything a job row copies from its queue, and pg-boss's clock (job_now(): now() unless a pg-boss test
-- clock overrides it), for the direct COPY path, which writes whole job rows itself; and whether any job
-- holds a slot a new row could hit under the queue's policy (one probe of the policy's partial index, the
-- policy spelled out so the planner can match it): if none does, the fan-out's rows can go in as one COPY.
SELECT q.policy, q.retry_limit, q.retry_delay, q.retry_backoff, q.retry_delay_max, q.expire_seconds,
  q.deletion_seconds, q.retention_seconds, q.dead_letter, q.heartbeat_seconds, {schema}.job_now() AS now,
  CASE q.policy
    WHEN 'short' THEN EXISTS (
      SELECT 1 FROM {schema}.job WHERE name = %(name)s AND policy = 'short' AND state = 'created')
    WHEN 'stately' THEN EXISTS (
      SELECT 1 FROM {schema}.job WHERE name = %(name)s AND policy = 'stately' AND state = 'created')
    WHEN 'exclusive' THEN EXISTS (
      SELECT 1 FROM {schema}.job WHERE name = %(name)s AND policy = 'exclusive' AND state <= 'active')
    ELSE false
  END AS slots_held
FROM {schema}.queue q
WHERE q.name = %(name)s

-- name: job_copy
-- The direct COPY path: whole job rows, as job_insert_staged_many would build them, straight into the job
-- table, inside a savepoint: one chunk's rows, or a whole fan-out's (a stream). A row whose slot is already
-- held (a waiting job, or a concurrent fan-out) fails the COPY with a unique violation; the caller rolls
-- back to the savepoint and takes the staging path (for a stream: does the fan-out again chunk by chunk).
COPY {schema}.job (
  id, name, data, priority, state, start_after, created_on, singleton_key,
  retry_limit, retry_delay, retry_backoff, retry_delay_max, expire_seconds, deletion_seconds,
  keep_until, policy, dead_letter, heartbeat_seconds
)
FROM STDIN (FORMAT BINARY)

-- name: queue_notify
-- Wake pg-boss workers listening for this queue. The channel is "pgboss_" plus the first 24 hex digits
-- of sha224(schema), derived in the database like pg-boss derives it, so both sides always agree.
SELECT pg_notify('pgboss_' || left(encode(sha224(%(schema)s::text::bytea), 'hex'), 24), %(name)s::text)

-- name: schema_table_find
-- Whether pg-boss's version table exists in the schema, without raising (which would abort the caller's
-- transaction).
SELECT to_regclass(format('%%I.version', %(schema)s::text)) IS NOT NULL AS installed

-- name: schema_version_get
-- The pg-boss schema version.
SELECT version FROM {schema}.version

-- name: job_waiting_key_many :many
-- For each singleton key, the oldest job of the queue waiting to run (created or retry) that holds it,
-- whatever the policy: a `standard` queue has no index that would refuse a second waiting job.
SELECT DISTINCT ON (j.singleton_key) j.singleton_key, j.id::text AS id
FROM {schema}.job j
WHERE j.name = %(name)s
  AND j.state IN ('created', 'retry')
  AND j.singleton_key = ANY(%(keys)s::text[])
ORDER BY j.singleton_key, j.created_on, j.id
