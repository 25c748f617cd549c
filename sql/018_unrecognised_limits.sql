-- Unrecognised bodies get limits of their own (issue: "the log can be filled for ever by
-- anyone holding the ingest token"). A JSON object of no type we project is accepted and logged
-- whole; the platforms send few such (deviceDataChanged and the like, under 2 KiB), a flood
-- from a leaked callback URL sends many. Besides the size cap (TRACKER_UNRECOGNISED_MAX_BYTES,
-- checked before any database work), each ingest token may log at most
-- TRACKER_UNRECOGNISED_DAILY_BYTES of them a UTC day. The budget is kept here, not in a
-- process, so every worker and host shares it: one row per day and token (a digest of the
-- token that posted, or 'open' when no token is set), consumed by one INSERT ... ON CONFLICT
-- DO UPDATE ... WHERE bytes + n <= limit (tracker/store/budget.py), atomic under concurrency.
-- Recognised notifications never read or write it.
CREATE TABLE unrecognised_budget (
    day    date   NOT NULL,  -- UTC, by the database's clock
    token  text   NOT NULL,  -- the first 16 hex digits of sha256(token), or 'open'
    bytes  bigint NOT NULL CHECK (bytes >= 0),
    PRIMARY KEY (day, token)
);

-- Old unrecognised bodies can be pruned, and the log stays verifiable
-- (`tracker prune-unrecognised --before TIME --archive FILE`, tracker/store/prune.py). The
-- command writes the bodies to an archive and fsyncs it, then, in one transaction, records
-- each in `pruned_bodies` (its size and SHA-256, from the body as received) and empties its
-- `raw`, with `codec` = -1 ("pruned", never a dictionary). Everything else of the event stays:
-- position, stream, type, times, `hash`. `tracker verify` cannot recompute a pruned event's link
-- without its body: it checks the event against its `seal` instead (its hash, its stream's
-- previous hash, every field and the body's SHA-256), takes its stored hash as the link the
-- next event must follow, and with `--archive` recomputes the link from the archived body. Checkpoints
-- take the body's SHA-256 from `pruned_bodies`, so one taken before still verifies after.
CREATE TABLE pruned_bodies (
    position   bigint      PRIMARY KEY,  -- of `events` (no foreign key: TRUNCATE must reach the trigger)
    size       bigint      NOT NULL CHECK (size >= 0),  -- of the body as received
    sha256     bytea       NOT NULL CHECK (octet_length(sha256) = 32),
    -- Stands in for the link verify can no longer recompute (tracker/store/chain.py `seal`):
    -- over the stored hash, the previous hash of the stream, every field and `sha256`.
    seal       bytea       NOT NULL CHECK (octet_length(seal) = 32),
    pruned_at  timestamptz NOT NULL DEFAULT now(),
    archive    text        NOT NULL  -- the file its body was written to, as the command saw it
);
-- (It is append-only: definitions/20_refuse_rewrite.sql.)

ALTER TABLE events DROP CONSTRAINT events_codec_check,
    ADD CONSTRAINT events_codec_check CHECK (codec >= -1) NOT VALID;  -- every row has >= 0

-- `events` stays append-only; the one rewrite allowed is pruning, and only in a transaction
-- that says `SET LOCAL tracker.pruning = 'on'` (as `rejected` allows its one DELETE path,
-- 009_rejected_bounds.sql). The runtime role holds no UPDATE on `events`, so it cannot use
-- it. The statement trigger keeps its name (`events_append_only`) and still refuses DELETE
-- and TRUNCATE always; a row trigger then holds each pruning UPDATE to exactly that: an
-- unrecognised event, not pruned yet, recorded in `pruned_bodies`, whose `raw` becomes empty
-- and `codec` -1, every other column unchanged (definitions/22_events_append_only.sql and
-- 23_events_prune_only.sql). What the runtime role may do with the budget and the record of
-- pruned bodies: definitions/90_tracker_grant_runtime.sql.
