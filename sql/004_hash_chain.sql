-- Tamper evidence: every event carries sha256(previous hash of its stream || raw), the first
-- event of a stream chaining to 32 zero bytes. The trigger stops ordinary rewrites; the chain
-- makes any rewrite by someone who can get past it (a superuser disabling the trigger) visible
-- to `tracker verify`: an altered body, a removed or a reordered event breaks its stream's chain.

ALTER TABLE events ADD COLUMN hash bytea;

-- Chain the events logged before this migration, once. This is the only time the log is
-- written to after the fact, and only to add the new column; it happens inside the migration's
-- transaction, with the append-only trigger disabled for it alone (USER: a database created by
-- this version has no trigger yet, definitions/ adds it after the migrations).
ALTER TABLE events DISABLE TRIGGER USER;
DO $$
DECLARE
    stream record;
    event  record;
    head   bytea;
BEGIN
    FOR stream IN SELECT DISTINCT stream_type, stream_id FROM events LOOP
        head := '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
        FOR event IN
            SELECT position, raw FROM events
            WHERE stream_type = stream.stream_type AND stream_id = stream.stream_id
            ORDER BY position
        LOOP
            head := sha256(head || event.raw);
            UPDATE events SET hash = head WHERE position = event.position;
        END LOOP;
    END LOOP;
END
$$;
ALTER TABLE events ENABLE TRIGGER USER;
ALTER TABLE events ALTER COLUMN hash SET NOT NULL;

-- Appends chain each event to the head of its stream: `tracker_append`
-- (definitions/12_tracker_append_kept.sql).
