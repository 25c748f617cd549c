-- The event log: every accepted delivery, verbatim, in the order it was committed.
-- It is the source of truth; every projection is derived from it and can be rebuilt from it.

CREATE TABLE events (
    position     bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- 'device' (OceanConnect, keyed by deviceId), 'task' (IoTDA batch task, keyed by task_id),
    -- or 'unrecognised' (a well-formed notification of a type we log but do not project).
    stream_type  text        NOT NULL CHECK (stream_type IN ('device', 'task', 'unrecognised')),
    stream_id    text        NOT NULL,
    event_type   text        NOT NULL,
    payload      jsonb       NOT NULL,  -- parsed, for querying; the truth is raw
    raw          bytea       NOT NULL,  -- the exact bytes received
    received_at  timestamptz NOT NULL,
    occurred_at  timestamptz            -- when the payload says it happened (IoTDA event_time)
);

CREATE INDEX events_stream ON events (stream_type, stream_id, position);

-- Deliveries we refused (malformed JSON, schema violations, oversize bodies): kept for inspection.
CREATE TABLE rejected (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at  timestamptz NOT NULL,
    status       smallint    NOT NULL,  -- the HTTP status we answered
    code         text        NOT NULL,  -- the error code we answered
    reason       text        NOT NULL,  -- the error message we answered
    details      jsonb       NOT NULL DEFAULT '[]',
    raw          bytea       NOT NULL,  -- the bytes received (the first limit bytes if oversize)
    truncated    boolean     NOT NULL DEFAULT false
);

-- Both are append-only, enforced by the database rather than by convention: their triggers
-- are in definitions/ (21_rejected_append_only.sql, 22_events_append_only.sql).
