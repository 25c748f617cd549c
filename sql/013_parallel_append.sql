-- Appends run side by side (issue 14). Until now every append took one exclusive advisory lock
-- (APPEND_LOCK) from drawing its positions to COMMIT: one batch in the whole deployment was
-- inside its transaction at a time, however many processes or hosts appended. Now each append
--
-- 1. holds APPEND_LOCK *shared*: appends never wait on each other there, but whoever needs no
--    append in flight (the swap of `tracker replay`, a migration such as 011) still takes it
--    exclusive, waits for the appends in flight, and holds off new ones;
-- 2. locks the streams it writes, one transaction-scoped advisory lock per stream (a pair of
--    32-bit hashes: a collision only makes two streams wait on each other), taken in one sorted
--    order so that two appends never wait on each other in a cycle. Appends to different
--    streams never wait; per stream, whoever draws later positions also commits later, so a
--    stream's events become visible, are chained and are projected in position order
--    (DESIGN.md invariant 3);
-- 3. publishes an in-flight marker before it draws its positions: a shared advisory lock whose
--    64-bit key is MARKER (the top 16 bits) and a number below every position it will draw (the
--    last one drawn so far). `tracker_horizon()` reads the markers from pg_locks: every event at
--    or below the horizon it returns is committed, or will never be. Followers page up to it
--    and never skip an event that commits late (invariant 5). The proof is in
--    tracker/store/horizon.py.

CREATE OR REPLACE FUNCTION tracker_append(
    lock_key bigint, stream_types text[], stream_ids text[], event_types text[],
    bodies bytea[], stored bytea[], codecs smallint[], received timestamptz[],
    occurred timestamptz[], readmitted bigint[]
) RETURNS SETOF bigint
LANGUAGE plpgsql AS $$
DECLARE
    positions bigint[];
    drawn bigint;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(lock_key);
    -- PostgreSQL (9.6 on) evaluates a volatile target list after the sort: locks in key order.
    PERFORM pg_advisory_xact_lock(hashtext(s.st), hashtext(s.sid))
    FROM (SELECT DISTINCT st, sid FROM unnest(stream_types, stream_ids) AS u(st, sid)) AS s
    ORDER BY hashtext(s.st), hashtext(s.sid);
    drawn := coalesce(pg_sequence_last_value(pg_get_serial_sequence('events', 'position')::regclass), 0);
    IF drawn >= 281474976710656 THEN  -- 2^48: the marker's key has 48 bits for it
        RAISE EXCEPTION 'the log''s positions passed 2^48; in-flight markers cannot hold them';
    END IF;
    PERFORM pg_advisory_xact_lock_shared((29300::bigint << 48) | drawn);  -- MARKER 0x7274 ("rt")
    positions := ARRAY(
        SELECT nextval(pg_get_serial_sequence('events', 'position'))
        FROM generate_series(1, cardinality(stream_types))
        ORDER BY 1);
    -- Each stream's head is read by this new statement, after its lock: the head committed by
    -- whoever held the stream before. Otherwise as in 011_chain_all_fields.sql.
    RETURN QUERY
    WITH RECURSIVE batch AS (
        SELECT t.*, positions[t.n] AS pos,
               row_number() OVER (PARTITION BY t.st, t.sid ORDER BY t.n) AS k
        FROM unnest(stream_types, stream_ids, event_types, bodies, stored, codecs, received, occurred,
                    readmitted)
            WITH ORDINALITY AS t(st, sid, et, body, raw, codec, received_at, occurred_at, readmitted_from, n)
    ), chain AS (
        SELECT b.n, b.st, b.sid, b.k,
               tracker_link(head.hash, b.pos, b.st, b.sid, b.et, b.received_at, b.occurred_at,
                            b.readmitted_from, b.body) AS hash
        FROM batch b
        LEFT JOIN LATERAL (
            SELECT e.hash FROM events e
            WHERE e.stream_type = b.st AND e.stream_id = b.sid
            ORDER BY e.position DESC LIMIT 1
        ) AS head ON true
        WHERE b.k = 1
        UNION ALL
        SELECT b.n, b.st, b.sid, b.k,
               tracker_link(c.hash, b.pos, b.st, b.sid, b.et, b.received_at, b.occurred_at,
                            b.readmitted_from, b.body)
        FROM chain c JOIN batch b ON b.st = c.st AND b.sid = c.sid AND b.k = c.k + 1
    )
    INSERT INTO events AS e
        (position, stream_type, stream_id, event_type, raw, codec, received_at, occurred_at,
         hash, chain, readmitted_from)
    OVERRIDING SYSTEM VALUE
    SELECT b.pos, b.st, b.sid, b.et, b.raw, b.codec, b.received_at, b.occurred_at, c.hash, 2,
           b.readmitted_from
    FROM batch b JOIN chain c USING (n)
    ORDER BY b.n
    RETURNING e.position;
END
$$;

-- CREATE OR REPLACE resets what 010_append_definer.sql set; set it again (grants are kept).
DO $$
BEGIN
    EXECUTE format(
        'ALTER FUNCTION tracker_append(bigint, text[], text[], text[], bytea[], bytea[], smallint[], timestamptz[], timestamptz[], bigint[]) SECURITY DEFINER SET search_path = %I, pg_temp',
        current_schema());
END
$$;

-- The followers' horizon: a position at or below which every event is visible to a snapshot
-- taken after this returns, or will never be. Two statements, in this order (a plpgsql
-- function runs them one after the other): the last position drawn, then the markers of the
-- appends in flight. Read before taking the snapshot that pages with it; see
-- tracker/store/horizon.py. Markers of appends to other schemas of the database count too:
-- they can only hold the horizon back while they are in flight, never move it past an event.
-- It runs as its owner: a reader with SELECT on the tables alone (an auditor's role) may call
-- it without any right on the sequence; all it tells is the last position drawn.
CREATE FUNCTION tracker_horizon() RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    drawn bigint;
    in_flight bigint;
BEGIN
    drawn := coalesce(pg_sequence_last_value(pg_get_serial_sequence('events', 'position')::regclass), 0);
    SELECT min(((l.classid::bigint & 65535) << 32) | l.objid::bigint) INTO in_flight
    FROM pg_locks l
    WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted  -- objsubid 1: a 64-bit key
      AND l.classid::bigint >> 16 = 29300  -- its top 16 bits: MARKER
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database());
    RETURN least(drawn, in_flight);  -- least() ignores a null: no append in flight
END
$$;
DO $$
BEGIN
    EXECUTE format(
        'ALTER FUNCTION tracker_horizon() SECURITY DEFINER SET search_path = %I, pg_temp',
        current_schema());
END
$$;
