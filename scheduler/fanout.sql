-- The per-tick key tables of `TickKeys` (scheduler/fanout.py): the singleton keys a tick has planned, per
-- queue, and the job holding each, once its cohort is too large to keep them in memory. Both live until
-- the fan-out's transaction ends.

-- name: tick_keys_create :exec
-- The keys claimed so far: the primary key decides which occurrence of a key is the first.
-- Byte order (COLLATE "C"): equality is all it is used for, and comparing by the locale costs more.
CREATE TEMP TABLE IF NOT EXISTS scheduler_tick_keys (
    queue text COLLATE "C" NOT NULL,
    singleton_key text COLLATE "C" NOT NULL,
    PRIMARY KEY (queue, singleton_key)
) ON COMMIT DROP;

-- name: tick_holders_create :exec
-- The job holding each key, appended by COPY as chunks are enqueued (no index until a holder is read).
CREATE TEMP TABLE IF NOT EXISTS scheduler_tick_holders (
    queue text COLLATE "C" NOT NULL,
    singleton_key text COLLATE "C" NOT NULL,
    job_id text NOT NULL
) ON COMMIT DROP;

-- name: tick_holders_index :exec
-- Built the first time a holder is looked up: only cohorts with repeated keys pay for it.
CREATE INDEX IF NOT EXISTS scheduler_tick_holders_key ON pg_temp.scheduler_tick_holders (queue, singleton_key);

-- name: tick_keys_copy
-- The keys held in memory until the spill, then nothing else: `tick_keys_claim_many` adds the rest.
COPY pg_temp.scheduler_tick_keys (queue, singleton_key) FROM STDIN

-- name: tick_holders_copy
-- Append the holders of a chunk's keys (and, at the spill, those held in memory).
COPY pg_temp.scheduler_tick_holders (queue, singleton_key, job_id) FROM STDIN

-- name: tick_keys_claim_many :many
-- Claim a chunk's distinct keys for a queue (a JSON array of strings: one text parameter is far cheaper to
-- send than a text[] of thousands); return the keys that were new in the tick.
INSERT INTO pg_temp.scheduler_tick_keys (queue, singleton_key)
SELECT %(queue)s, k FROM jsonb_array_elements_text(%(keys)s::jsonb) AS t (k)
ON CONFLICT DO NOTHING
RETURNING singleton_key;

-- name: tick_holders_many :many
-- The holder job id of each given key of a queue, where one is known.
SELECT singleton_key, job_id
FROM pg_temp.scheduler_tick_holders
WHERE queue = %(queue)s AND singleton_key = ANY(%(keys)s::text[]);
