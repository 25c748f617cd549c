-- Tamper evidence: every event carries sha256(previous hash of its stream || raw), the first
-- event of a stream chaining to 32 zero bytes. The trigger stops ordinary rewrites; the chain
-- makes any rewrite by someone who can get past it (a superuser disabling the trigger) visible
-- to `tracker verify`: an altered body, a removed or a reordered event breaks its stream's chain.

ALTER TABLE events ADD COLUMN hash bytea;

-- Chain the events logged before this migration, once. This is the only time the log is
-- written to after the fact, and only to add the new column; it happens inside the migration's
-- transaction, with the append-only trigger disabled for it alone.
ALTER TABLE events DISABLE TRIGGER events_append_only;
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
ALTER TABLE events ENABLE TRIGGER events_append_only;
ALTER TABLE events ALTER COLUMN hash SET NOT NULL;

-- Append a batch: take the append lock, then insert with each event chained to the head of its
-- stream. One round trip, in that order: the INSERT is a statement of its own, so its snapshot
-- is taken after the lock is granted and sees every head committed before (a stale head would
-- fork the chain). Events of one stream within the batch chain to each other in batch order.
-- Returns the positions, which follow the arrays' order.
CREATE FUNCTION tracker_append(
    lock_key bigint, stream_types text[], stream_ids text[], event_types text[],
    payloads text[], raws bytea[], received timestamptz[], occurred timestamptz[]
) RETURNS SETOF bigint
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    RETURN QUERY
    WITH RECURSIVE batch AS (
        SELECT t.*, row_number() OVER (PARTITION BY t.st, t.sid ORDER BY t.n) AS k
        FROM unnest(stream_types, stream_ids, event_types, payloads, raws, received, occurred)
            WITH ORDINALITY AS t(st, sid, et, payload, raw, received_at, occurred_at, n)
    ), chain AS (
        SELECT b.n, b.st, b.sid, b.k,
               sha256(coalesce(head.hash, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea) || b.raw) AS hash
        FROM batch b
        LEFT JOIN LATERAL (
            SELECT e.hash FROM events e
            WHERE e.stream_type = b.st AND e.stream_id = b.sid
            ORDER BY e.position DESC LIMIT 1
        ) AS head ON true
        WHERE b.k = 1
        UNION ALL
        SELECT b.n, b.st, b.sid, b.k, sha256(c.hash || b.raw)
        FROM chain c JOIN batch b ON b.st = c.st AND b.sid = c.sid AND b.k = c.k + 1
    )
    INSERT INTO events AS e
        (stream_type, stream_id, event_type, payload, raw, received_at, occurred_at, hash)
    SELECT b.st, b.sid, b.et, b.payload::jsonb, b.raw, b.received_at, b.occurred_at, c.hash
    FROM batch b JOIN chain c USING (n)
    ORDER BY b.n
    RETURNING e.position;
END
$$;
