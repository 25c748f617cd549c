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
CREATE TRIGGER pruned_bodies_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON pruned_bodies
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_rewrite();

ALTER TABLE events DROP CONSTRAINT events_codec_check,
    ADD CONSTRAINT events_codec_check CHECK (codec >= -1) NOT VALID;  -- every row has >= 0

-- `events` stays append-only; the one rewrite allowed is pruning, and only in a transaction
-- that says `SET LOCAL tracker.pruning = 'on'` (as `rejected` allows its one DELETE path,
-- 009_rejected_bounds.sql). The runtime role holds no UPDATE on `events`, so it cannot use
-- it. The statement trigger keeps its name (`events_append_only`) and still refuses DELETE
-- and TRUNCATE always; a row trigger then holds each pruning UPDATE to exactly that: an
-- unrecognised event, not pruned yet, recorded in `pruned_bodies`, whose `raw` becomes empty
-- and `codec` -1, every other column unchanged.
CREATE FUNCTION refuse_rewrite_unless_pruning_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('tracker.pruning', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'history is never rewritten; unrecognised bodies are pruned with '
                     'tracker prune-unrecognised --before TIME --archive FILE';
END
$$;
DROP TRIGGER events_append_only ON events;
CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_rewrite_unless_pruning_events();

CREATE FUNCTION events_prune_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Outside pruning the statement trigger above decides (and a superuser who disabled it
    -- on purpose, as the tamper tests do, is not second-guessed here).
    IF current_setting('tracker.pruning', true) IS DISTINCT FROM 'on' THEN
        RETURN NEW;
    END IF;
    IF OLD.stream_type <> 'unrecognised' OR OLD.codec = -1 OR NEW.codec <> -1
       OR pg_catalog.octet_length(NEW.raw) <> 0
       OR (NEW.position, NEW.stream_type, NEW.stream_id, NEW.event_type, NEW.received_at,
           NEW.occurred_at, NEW.hash, NEW.chain, NEW.readmitted_from)
          IS DISTINCT FROM
          (OLD.position, OLD.stream_type, OLD.stream_id, OLD.event_type, OLD.received_at,
           OLD.occurred_at, OLD.hash, OLD.chain, OLD.readmitted_from)
       OR NOT EXISTS (SELECT FROM pruned_bodies p WHERE p.position = OLD.position) THEN
        RAISE EXCEPTION 'events: pruning may only empty the body of an unrecognised event '
                        'recorded in pruned_bodies (position %)', OLD.position
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER events_prune_only
    BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION events_prune_only();

-- As in 016_trust_boundaries.sql, plus the budget and the record of pruned bodies.
CREATE OR REPLACE FUNCTION tracker_grant_runtime() RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    grantee name := (SELECT role_name FROM runtime_role);
BEGIN
    IF grantee IS NULL THEN
        RETURN;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), grantee);
    -- It uses the schema; it never creates in it (see the top of 016_trust_boundaries.sql).
    EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM %I', current_schema(), grantee);
    -- The log: read, and append only through tracker_append (which runs as its owner, under
    -- the append lock, with the hash chain); the refusals: read and append, never rewrite.
    EXECUTE format('GRANT SELECT ON events TO %I', grantee);
    EXECUTE format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON events FROM %I', grantee);
    EXECUTE format('GRANT SELECT, INSERT ON rejected TO %I', grantee);
    -- Read models, maintained inside the append's transaction (DELETE: rollup rows that fall to
    -- zero devices, which a recount would not have).
    EXECUTE format(
        'GRANT SELECT, INSERT, UPDATE ON devices, device_tracks, sub_operations, '
        'device_transitions, operation_devices, operations, operation_activity, tasks, '
        'task_transitions TO %I', grantee);
    EXECUTE format(
        'GRANT SELECT, INSERT, UPDATE, DELETE ON operation_errors, operation_versions TO %I',
        grantee);
    -- What the server reads besides: migrations applied, replay progress (for /metrics), the
    -- dictionaries bodies are compressed with.
    EXECUTE format('GRANT SELECT ON schema_migrations, replay_progress, runtime_role, '
                   'body_codecs TO %I', grantee);
    -- Unrecognised bodies' daily budget: consumed by every ingest of one (018).
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON unrecognised_budget TO %I', grantee);
    -- What was pruned, for readers of the log: read only (pruning is the owner's).
    EXECUTE format('GRANT SELECT ON pruned_bodies TO %I', grantee);
    -- Dashboard sessions (017_sessions.sql): the keys are read, never written (only the owner
    -- rotates them); sessions are opened, revoked at sign-out and pruned when long ended.
    EXECUTE format('GRANT SELECT ON session_keys TO %I', grantee);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON sessions TO %I', grantee);
    EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA %I TO %I', current_schema(), grantee);
    EXECUTE format('GRANT EXECUTE ON FUNCTION tracker_append(text[], text[], text[], bytea[], '
                   'bytea[], smallint[], timestamptz[]) TO %I', grantee);
END
$fn$;
SELECT tracker_grant_runtime();
