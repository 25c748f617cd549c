-- What pruning may do to an event (018_unrecognised_limits.sql): empty the body of an
-- unrecognised event, not pruned yet and recorded in `pruned_bodies`, so that `raw` becomes empty
-- and `codec` -1, every other column unchanged. Row by row, after the statement trigger of
-- 22_events_append_only.sql has let a pruning UPDATE through.
CREATE OR REPLACE FUNCTION events_prune_only() RETURNS trigger LANGUAGE plpgsql AS $$
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

DROP TRIGGER IF EXISTS events_prune_only ON events;
CREATE TRIGGER events_prune_only
    BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION events_prune_only();
