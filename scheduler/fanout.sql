-- The store of `TickKeys` (scheduler/fanout.py) once a tick's singleton keys are too many to keep in
-- memory: a private SQLite database on local disk (`sqlite3.connect("")`: a temporary file, removed when
-- the fan-out ends, whose pages SQLite caches up to a bound). SQLite, not the queue database: the queue
-- connection is busy with the fan-out's one COPY, and the planning thread claims keys while it is.

-- name: tick_store_open :script
-- Open the store: nothing in it outlives the fan-out or is ever rolled back, so no journal, a 16 MB page
-- cache, and one transaction for its whole life (never committed: the file is removed with it). The keys
-- claimed so far, per queue (the primary key decides which occurrence of a key is the first); the job
-- holding each key, appended as chunks are enqueued (no index until a holder is read).
PRAGMA journal_mode = OFF;
PRAGMA cache_size = -16384;
CREATE TABLE tick_keys (
    queue TEXT NOT NULL,
    singleton_key TEXT NOT NULL,
    PRIMARY KEY (queue, singleton_key)
) WITHOUT ROWID;
CREATE TABLE tick_holders (
    queue TEXT NOT NULL,
    singleton_key TEXT NOT NULL,
    job_id TEXT NOT NULL
);
BEGIN;

-- name: tick_holders_index :exec
-- Built the first time a holder is looked up: only cohorts with repeated keys pay for it.
CREATE INDEX IF NOT EXISTS tick_holders_key ON tick_holders (queue, singleton_key)

-- name: tick_keys_add_many :exec
-- Add keys known to be new (those held in memory until the spill).
INSERT INTO tick_keys (queue, singleton_key) VALUES (?, ?)

-- name: tick_holders_add_many :exec
-- Append the holders of a chunk's keys (and, at the spill, those held in memory).
INSERT INTO tick_holders (queue, singleton_key, job_id) VALUES (?, ?, ?)

-- name: tick_keys_claim_many :many
-- Claim a chunk's distinct keys for a queue (a JSON array of strings); return the keys that were new in
-- the tick. (`WHERE true` tells SQLite's parser that ON CONFLICT belongs to the INSERT.)
INSERT INTO tick_keys (queue, singleton_key)
SELECT :queue, value FROM json_each(:keys) WHERE true
ON CONFLICT DO NOTHING
RETURNING singleton_key

-- name: tick_holders_many :many
-- The holder job id of each given key of a queue (a JSON array of strings), where one is known.
SELECT h.singleton_key, h.job_id
FROM json_each(:keys) AS k
CROSS JOIN tick_holders AS h ON h.queue = :queue AND h.singleton_key = k.value
