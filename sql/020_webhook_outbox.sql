-- Webhooks (issue 25, item 3; tracker/webhooks/): an outbox of alert changes to POST.
--
-- The code that changes an alert inserts its one row here in the same transaction
-- (tracker/store/outbox.py, `enqueue`), so a change is sent if and only if it committed, and
-- survives restarts; the deliverer (tracker/webhooks/deliverer.py) sends rows after commit,
-- never inside an append's transaction. Rows are kept once delivered or dead (a dead letter
-- can be retried); nothing here is derived from the log, so replay never touches it.
CREATE TABLE webhook_outbox (
    -- Order of enqueueing. Within one ordering key it is also the order of commit: `enqueue`
    -- takes a lock on the key before the value is drawn and holds it to commit.
    seq           bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    id            text        PRIMARY KEY,  -- the change's unique id, also in the body
    ordering      text        NOT NULL,     -- same key, delivered in order (the rollout)
    url           text        NOT NULL,
    secret_ref    text        NOT NULL,     -- the webhook_secrets row that signs it (the guard)
    body          bytea       NOT NULL,     -- the exact JSON bytes sent and signed
    created_at    timestamptz NOT NULL,
    attempts      integer     NOT NULL DEFAULT 0,
    next_at       timestamptz NOT NULL,     -- due then; while a delivery is in flight, its lease
    last_error    text,
    state         text        NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    delivered_at  timestamptz,
    -- Set by a retry of a dead letter: the give-up time counts from it, not from created_at.
    retried_at    timestamptz
);
-- What is due, oldest first (the deliverer's claim).
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_at, seq) WHERE state = 'pending';
-- The head of each ordering key: nothing is sent while an earlier row of its key is pending.
CREATE INDEX webhook_outbox_ordering ON webhook_outbox (ordering, seq) WHERE state = 'pending';
-- Dead letters, paged by seq.
CREATE INDEX webhook_outbox_dead ON webhook_outbox (seq) WHERE state = 'dead';

-- The secrets that sign deliveries, by name (a guard's). Kept here and never in the event log:
-- the log is readable by anyone holding the read token (GET /v1/events), a secret must not be.
CREATE TABLE webhook_secrets (
    name        text        PRIMARY KEY,
    secret      text        NOT NULL,
    updated_at  timestamptz NOT NULL
);
-- What the runtime role may do with them: definitions/90_tracker_grant_runtime.sql.
