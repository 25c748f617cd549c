-- `events` is append-only: DELETE and TRUNCATE are refused always, UPDATE unless the
-- transaction says `SET LOCAL tracker.pruning = 'on'` (`tracker prune-unrecognised`,
-- 018_unrecognised_limits.sql), and then each updated row must pass `events_prune_only`
-- (23_events_prune_only.sql). The runtime role holds no UPDATE on `events`, so it cannot use it.
-- The hash chains make any rewrite by someone who can get past this (a superuser disabling the
-- trigger) visible to `tracker verify`.
CREATE OR REPLACE FUNCTION refuse_rewrite_unless_pruning_events() RETURNS trigger
LANGUAGE plpgsql AS $$
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

DROP TRIGGER IF EXISTS events_append_only ON events;
CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_rewrite_unless_pruning_events();
