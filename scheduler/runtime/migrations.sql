-- Versioned migration steps of the ledger, applied in order by `scheduler migrate` (and at start, under
-- an advisory lock). Each step is named `v<NNNN>_<what>`; never edit a released step, add the next one.

-- name: v0001_ledger :ddl
-- The tick ledger and the per-schedule horizon.
CREATE TABLE {schema}.tick (
    schedule text NOT NULL,
    tick timestamptz NOT NULL,
    outcome text NOT NULL CHECK (outcome IN ('done', 'failed', 'skipped')),
    reason text,
    replica text NOT NULL,
    attempts integer NOT NULL DEFAULT 1,
    started_at timestamptz NOT NULL,
    finished_at timestamptz,
    accepted integer NOT NULL DEFAULT 0,
    dropped integer NOT NULL DEFAULT 0,
    dropped_by_reason jsonb NOT NULL DEFAULT jsonb_build_object(),
    duration_ms double precision,
    PRIMARY KEY (schedule, tick)
);
CREATE INDEX tick_failed_idx ON {schema}.tick (schedule, tick) WHERE outcome = 'failed';
CREATE TABLE {schema}.schedule_state (
    schedule text PRIMARY KEY,
    first_seen timestamptz NOT NULL,
    horizon timestamptz NOT NULL
);

-- name: v0002_reemit :ddl
-- Watcher re-emits, one row per job a watcher put back for an entity, so `max_reemits` per `reemit_window`
-- is counted across passes and replicas (read and written in the pass's transaction).
CREATE TABLE {schema}.reemit (
    watcher text NOT NULL,
    entity text NOT NULL,
    at timestamptz NOT NULL,
    queue text NOT NULL,
    job_id text NOT NULL,
    replica text NOT NULL
);
CREATE INDEX reemit_entity_idx ON {schema}.reemit (watcher, entity, at);

-- name: v0003_reemit_kind :ddl
-- A watcher's `reemit_exhausted` is reported once per `reemit_window` per entity: the report is a ledger row
-- of kind 'exhausted' (no job), next to the re-emits (kind 'reemit', the only ones counted).
ALTER TABLE {schema}.reemit
    ADD COLUMN kind text NOT NULL DEFAULT 'reemit' CHECK (kind IN ('reemit', 'exhausted')),
    ALTER COLUMN job_id DROP NOT NULL;

-- name: v0004_replica :ddl
-- One row per replica: the configuration it runs (loaded when, which files and schedules), its last failed
-- reload (cleared by a reload that succeeds) and a heartbeat (`seen_at`, every `seen_every`), so
-- `scheduler status` shows a replica that kept an older configuration because the new one failed.
CREATE TABLE {schema}.replica (
    replica text PRIMARY KEY,
    seen_at timestamptz NOT NULL,
    seen_every interval NOT NULL,
    loaded_at timestamptz NOT NULL,
    files text[] NOT NULL,
    schedules text[] NOT NULL,
    reload_failed_at timestamptz,
    reload_error text
);

-- name: v0005_tick_fired_by :ddl
-- Who fanned a tick out: the sidecar at its schedule ('scheduled') or a person with `scheduler fire`
-- ('manual'), which claims the tick in this ledger like a replica does, so `scheduler status` shows it and
-- neither can fan out an instant the other already did.
ALTER TABLE {schema}.tick
    ADD COLUMN fired_by text NOT NULL DEFAULT 'scheduled' CHECK (fired_by IN ('scheduled', 'manual'));
