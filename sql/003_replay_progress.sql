-- Where the latest `tracker replay` (or `--check`) run is, for /metrics: replay runs in its own
-- process, so it reports here and any server process can expose it. Operational state, one row;
-- not part of the projections (replay neither rebuilds nor swaps it).
CREATE TABLE replay_progress (
    only_row      boolean          PRIMARY KEY DEFAULT true CHECK (only_row),
    mode          text             NOT NULL CHECK (mode IN ('replay', 'check')),
    started_at    timestamptz      NOT NULL,
    events_done   bigint           NOT NULL,
    events_total  bigint           NOT NULL,
    finished_at   timestamptz,
    pause_ms      double precision,  -- replay: how long ingestion waited for the swap
    drift         integer            -- check: differences found
);
