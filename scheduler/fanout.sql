-- The per-tick key table of `TickKeys` (scheduler/fanout.py): the singleton keys a tick has planned, per
-- queue, and the job holding each, once its cohort is too large to keep them in memory.

-- name: tick_keys_create :exec
-- A temporary table of the tick's keys and their holders; it lives until the fan-out commits.
CREATE TEMP TABLE IF NOT EXISTS scheduler_tick_keys (
    queue text NOT NULL,
    singleton_key text NOT NULL,
    job_id text,
    PRIMARY KEY (queue, singleton_key)
) ON COMMIT DROP;

-- name: tick_keys_insert_many :exec
-- Move the keys held in memory so far (queues, keys, holder job ids or null) into the table.
INSERT INTO pg_temp.scheduler_tick_keys (queue, singleton_key, job_id)
SELECT q, k, j FROM unnest(%(queues)s::text[], %(keys)s::text[], %(job_ids)s::text[]) AS t (q, k, j);

-- name: tick_keys_claim_many :many
-- Record a chunk's keys for a queue; return the 1-based ordinal of each key's first new occurrence.
WITH input AS (
    SELECT k, ord FROM unnest(%(keys)s::text[]) WITH ORDINALITY AS t (k, ord)
),
claimed AS (
    INSERT INTO pg_temp.scheduler_tick_keys (queue, singleton_key)
    SELECT %(queue)s, k FROM input
    ON CONFLICT DO NOTHING
    RETURNING singleton_key
)
SELECT min(input.ord) FROM input JOIN claimed ON claimed.singleton_key = input.k GROUP BY input.k;

-- name: tick_keys_hold_many :exec
-- Note the job id now holding each key of a queue (keys and ids as parallel arrays).
UPDATE pg_temp.scheduler_tick_keys AS t
SET job_id = h.j
FROM unnest(%(keys)s::text[], %(job_ids)s::text[]) AS h (k, j)
WHERE t.queue = %(queue)s AND t.singleton_key = h.k;

-- name: tick_keys_holders_many :many
-- The holder job id of each given key of a queue, where one is known.
SELECT singleton_key, job_id
FROM pg_temp.scheduler_tick_keys
WHERE queue = %(queue)s AND singleton_key = ANY(%(keys)s::text[]) AND job_id IS NOT NULL;
