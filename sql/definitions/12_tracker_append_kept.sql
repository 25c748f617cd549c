-- tracker_append_kept(...): the append, with every stored field given. The runtime role's
-- `tracker_append` (next file) calls it with the database's clock and no readmission; the owner
-- calls it directly for `tracker readmit` (a refusal's receive time and its id, which must name
-- a refusal received then) and `tracker import` (`restoring`: the exported times and links of
-- another log, whose refusals are not here). Returns the positions and receive times, in the
-- arrays' order. How appends run side by side (013_parallel_append.sql, and the proof in
-- tracker/store/horizon.py):
--
-- 1. APPEND_LOCK (tracker/store/events.py), held *shared*: appends never wait on each other
--    there, but whoever needs no append in flight (the swap of `tracker replay`, a migration
--    such as 011) takes it exclusive, waits for the appends in flight, and holds off new ones.
-- 2. One transaction-scoped advisory lock per stream written (a pair of 32-bit hashes: a
--    collision only makes two streams wait on each other), taken in one sorted order so that
--    two appends never wait on each other in a cycle. Per stream, whoever draws later
--    positions also commits later, so a stream's events become visible, are chained and are
--    projected in position order (DESIGN.md invariant 3).
-- 3. An in-flight marker, published before the positions are drawn: a shared advisory lock
--    whose 64-bit key is MARKER (the top 16 bits) and a number below every position it will
--    draw (the last one drawn so far). `tracker_horizon()` reads the markers.
-- 4. The positions, drawn under those locks, so that each link can cover its own position;
--    then one INSERT, a statement of its own, so its snapshot is taken after the stream locks
--    and reads each stream's head as committed by whoever held the stream before. Events of
--    one stream within the batch chain to each other in batch order (`tracker_link`).
CREATE OR REPLACE FUNCTION tracker_append_kept(
    stream_types text[], stream_ids text[], event_types text[], bodies bytea[], stored bytea[],
    codecs smallint[], received timestamptz[], occurred timestamptz[], readmitted bigint[],
    restoring boolean
) RETURNS TABLE (appended bigint, received_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    positions bigint[];
    drawn bigint;
    bad text;
BEGIN
    SELECT pg_catalog.format('event %s: %s', u.n, CASE
               WHEN u.t IS NULL OR NOT pg_catalog.isfinite(u.t) THEN 'no finite receive time'
               ELSE pg_catalog.format('readmitted from refusal %s, which was not refused at %s',
                                      u.r, u.t) END)
    INTO bad
    FROM unnest(received, readmitted) WITH ORDINALITY AS u(t, r, n)
    WHERE u.t IS NULL OR NOT pg_catalog.isfinite(u.t)
       OR (u.r IS NOT NULL AND NOT restoring
           AND NOT EXISTS (SELECT FROM rejected j WHERE j.id = u.r AND j.received_at = u.t))
    ORDER BY u.n LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'tracker_append_kept refused %', bad USING ERRCODE = 'data_exception';
    END IF;
    PERFORM pg_catalog.pg_advisory_xact_lock_shared(128034777362279);  -- APPEND_LOCK
    -- PostgreSQL (9.6 on) evaluates a volatile target list after the sort: locks in key order.
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext(s.st), pg_catalog.hashtext(s.sid))
    FROM (SELECT DISTINCT st, sid FROM unnest(stream_types, stream_ids) AS u(st, sid)) AS s
    ORDER BY pg_catalog.hashtext(s.st), pg_catalog.hashtext(s.sid);
    drawn := coalesce(pg_catalog.pg_sequence_last_value(
        pg_catalog.pg_get_serial_sequence('events', 'position')::regclass), 0);
    IF drawn >= 281474976710656 THEN  -- 2^48: the marker's key has 48 bits for it
        RAISE EXCEPTION 'the log''s positions passed 2^48; in-flight markers cannot hold them';
    END IF;
    PERFORM pg_catalog.pg_advisory_xact_lock_shared((29300::bigint << 48) | drawn);  -- MARKER
    positions := ARRAY(
        SELECT pg_catalog.nextval(pg_catalog.pg_get_serial_sequence('events', 'position'))
        FROM pg_catalog.generate_series(1, pg_catalog.cardinality(stream_types))
        ORDER BY 1);
    RETURN QUERY
    WITH RECURSIVE batch AS (
        SELECT t.*, positions[t.n] AS pos,
               pg_catalog.row_number() OVER (PARTITION BY t.st, t.sid ORDER BY t.n) AS k
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
    RETURNING e.position, e.received_at;
END
$$;
REVOKE EXECUTE ON FUNCTION tracker_append_kept(text[], text[], text[], bytea[], bytea[],
    smallint[], timestamptz[], timestamptz[], bigint[], boolean) FROM PUBLIC;
