-- Statements of the procrastinate 3 backend. procrastinate has no version table and a schema chosen by
-- search_path only, so every name here is unqualified: the adapter points search_path at `QueueRef.schema`
-- (when set) around each call, which the insert triggers need anyway (they name their tables unqualified).

-- name: job_holder_many :many
-- Explain dropped rows: for each queueing_lock, the todo job holding it, else the newest doing one (a worker
-- picked the holder up between our insert and this read). Both arms use the partial indexes on status.
SELECT DISTINCT ON (h.queueing_lock) h.queueing_lock, h.id, h.status::text AS status
FROM (
    SELECT queueing_lock, id, status
    FROM procrastinate_jobs
    WHERE status = 'todo' AND queueing_lock = ANY(%(queueing_locks)s::text[])
    UNION ALL
    SELECT queueing_lock, id, status
    FROM procrastinate_jobs
    WHERE status = 'doing' AND queueing_lock = ANY(%(queueing_locks)s::text[])
) AS h
ORDER BY h.queueing_lock, h.status = 'todo' DESC, h.id DESC;

-- name: job_holder_todo_many :many
-- Predict drops: the todo job holding each queueing_lock (only todo jobs hold one).
SELECT queueing_lock, id, status::text AS status
FROM procrastinate_jobs
WHERE status = 'todo' AND queueing_lock = ANY(%(queueing_locks)s::text[]);

-- name: job_insert_many :many
-- Insert one job per input row and say, per row in input order, which id it got and whether it went in.
-- Ids come from the table's own sequence, up front and in input order, so a skipped row still has an id to
-- join on (the sequence has gaps afterwards, as with procrastinate's own batch_defer). Rows go in sorted by
-- queueing_lock: two enqueuers with overlapping locks then take the index entries in the same order and
-- the later one waits instead of deadlocking. The conflict target names the partial unique index's column
-- and predicate (it is an index, not a constraint, so ON CONFLICT ON CONSTRAINT cannot name it). status,
-- attempts, abort_requested and worker_id keep their defaults: a todo row is what fires the NOTIFY trigger.
WITH input AS (
    SELECT nextval(pg_get_serial_sequence('procrastinate_jobs', 'id')) AS id, i.*
    FROM unnest(
        %(queueing_locks)s::text[],
        %(args)s::text[],
        %(scheduled_at)s::timestamptz[],
        %(priorities)s::int[]
    ) WITH ORDINALITY AS i (queueing_lock, args, scheduled_at, priority, ord)
),
inserted AS (
    INSERT INTO procrastinate_jobs (id, queue_name, task_name, priority, lock, queueing_lock, args, scheduled_at)
    SELECT id, %(queue_name)s, %(task_name)s, priority, NULL, queueing_lock, args::jsonb, scheduled_at
    FROM input
    ORDER BY queueing_lock NULLS LAST, ord
    ON CONFLICT (queueing_lock) WHERE status = 'todo' DO NOTHING
    RETURNING id
)
SELECT input.ord, input.id, inserted.id IS NOT NULL AS inserted
FROM input
LEFT JOIN inserted ON inserted.id = input.id
ORDER BY input.ord;

-- name: schema_probe :one
-- What a procrastinate 3 install must have: the jobs table and its columns, the queueing-lock index, and
-- the status enum. Reads the catalogs only; every name resolves through search_path.
SELECT
    to_regclass('procrastinate_jobs') IS NOT NULL AS has_jobs,
    coalesce((
        SELECT array_agg(a.attname::text ORDER BY a.attnum)
        FROM pg_attribute AS a
        WHERE a.attrelid = to_regclass('procrastinate_jobs') AND a.attnum > 0 AND NOT a.attisdropped
    ), '{}') AS columns,
    to_regclass('procrastinate_jobs_queueing_lock_idx_v1') IS NOT NULL AS has_queueing_lock_index,
    coalesce((
        SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
        FROM pg_enum AS e
        WHERE e.enumtypid = to_regtype('procrastinate_job_status')
    ), '{}') AS statuses;

-- name: search_path_get :one
-- The search_path in force, to put back after a call that pointed it at procrastinate's schema.
SELECT current_setting('search_path') AS search_path;

-- name: search_path_set :one
-- Point search_path at procrastinate's schema (transaction-local when inside a transaction).
SELECT set_config('search_path', %(search_path)s, %(is_local)s);

-- name: job_waiting_lock_many :many
-- For each queueing_lock, the todo job holding it (in any queue: the unique index spans them all).
SELECT queueing_lock, id::text AS id
FROM procrastinate_jobs
WHERE status = 'todo' AND queueing_lock = ANY(%(queueing_locks)s::text[]);

-- name: job_held_all :many
-- The stream's snapshot: every queueing_lock a todo job holds as a fan-out begins (the unique index spans
-- all queues of the schema), with its holder, up to %(limit)s rows; the caller asks for one more than it
-- keeps, to know there were too many. Reads the partial unique index's entries, not the finished jobs.
SELECT queueing_lock, id::text AS id
FROM procrastinate_jobs
WHERE status = 'todo' AND queueing_lock IS NOT NULL
LIMIT %(limit)s;

-- name: job_ids_reserve :many
-- Take %(count)s ids from the jobs table's own sequence at once, before a fan-out's one COPY (a COPY cannot
-- say which ids it wrote, so the rows carry ids taken here). Returned as runs of consecutive ids, in order:
-- a concurrent session's nextval splits a run; ids left unused are gaps, as after procrastinate's own
-- failed batch_defer.
SELECT min(id) AS first, max(id) AS last
FROM (
    SELECT id, id - row_number() OVER (ORDER BY id) AS run
    FROM (
        SELECT nextval(pg_get_serial_sequence('procrastinate_jobs', 'id')) AS id
        FROM generate_series(1, %(count)s)
    ) AS taken
) AS numbered
GROUP BY run
ORDER BY first;

-- name: job_copy
-- The stream: a fan-out's rows for every queue of the schema, chunk by chunk, in one binary COPY, each with
-- an id from job_ids_reserve. Listed columns only: status, attempts, abort_requested and worker_id keep their
-- defaults, and the insert triggers fire per row as for an INSERT (the NOTIFY and the events). A row whose
-- queueing_lock a todo job took after the fan-out read the held locks fails the whole COPY (unique
-- violation); the fan-out rolls back to its savepoint and goes chunk by chunk with job_insert_many.
COPY procrastinate_jobs (id, queue_name, task_name, priority, lock, queueing_lock, args, scheduled_at)
FROM STDIN (FORMAT BINARY)
