-- Statements shared by every backend: the per-tick key table that reports `duplicate_in_cohort` across chunks.

-- name: tick_keys_create :exec
-- A temporary table of the singleton keys a tick has planned; it lives until the fan-out commits.
CREATE TEMP TABLE IF NOT EXISTS scheduler_tick_keys (
    queue text NOT NULL,
    singleton_key text NOT NULL,
    PRIMARY KEY (queue, singleton_key)
) ON COMMIT DROP;

-- name: tick_keys_claim_many :many
-- Record a chunk's keys (array %s, queue %s); return the 1-based ordinal of each key's first new occurrence.
WITH input AS (
    SELECT k, ord FROM unnest(%s::text[]) WITH ORDINALITY AS t (k, ord)
),
claimed AS (
    INSERT INTO pg_temp.scheduler_tick_keys (queue, singleton_key)
    SELECT %s, k FROM input
    ON CONFLICT DO NOTHING
    RETURNING singleton_key
)
SELECT min(input.ord) FROM input JOIN claimed ON claimed.singleton_key = input.k GROUP BY input.k;

-- name: tick_keys_insert_many :exec
-- Move the keys held in memory so far (queues %s, keys %s) into the table.
INSERT INTO pg_temp.scheduler_tick_keys (queue, singleton_key)
SELECT q, k FROM unnest(%s::text[], %s::text[]) AS t (q, k);
