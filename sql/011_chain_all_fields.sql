-- Each event's link in its stream's hash chain covers every stored field of the event, not its
-- body alone (issue 12, item 5): its position, stream, type, receive and platform times, where
-- it was readmitted from, and the body as received. Back-dating an event, moving it to another
-- stream or position, or changing its type now breaks the chain as an altered body does.
--
-- `events.chain` says which link an event carries: 1 (body only, every event appended before
-- this migration keeps it: rewriting them now would launder whatever was done to them before)
-- or 2 (all fields). `chain_versions` records where version 2 begins, so that an event after
-- it stored with a body-only link (a downgrade, to hide an altered field) is itself a break.
-- tracker/store/chain.py computes both links the same way, for `tracker verify`.

-- No append runs while the boundary is drawn.
SELECT pg_advisory_xact_lock(128034777362279);  -- APPEND_LOCK, tracker/store/events.py

ALTER TABLE events ADD COLUMN chain smallint NOT NULL DEFAULT 1;
ALTER TABLE events ALTER COLUMN chain DROP DEFAULT;  -- every writer from now on says which

CREATE TABLE chain_versions (
    version       smallint PRIMARY KEY,
    from_position bigint NOT NULL  -- the first position that may carry this version's link
);
INSERT INTO chain_versions
SELECT 2, coalesce(max(position), 0) + 1 FROM events;

-- Microseconds since 1970, exactly on every supported PostgreSQL (extract's epoch is a double
-- before 14): whole seconds, then the fraction. Offsets of time zones are whole seconds, so
-- the session's zone changes neither part. The infinities are where asyncpg puts them (it
-- reads them as the first and last instants Python has, and writes those instants as them).
CREATE FUNCTION tracker_micros(at timestamptz) RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN at = '-infinity' THEN -62135596800000000  -- 0001-01-01T00:00:00Z
        WHEN at = 'infinity' THEN 253402300799999999   -- 9999-12-31T23:59:59.999999Z
        ELSE extract(epoch FROM date_trunc('second', at))::bigint * 1000000
             + extract(microseconds FROM at)::bigint % 1000000
    END
$$;

-- A link of version 2; see tracker/store/chain.py for the layout.
CREATE FUNCTION tracker_link(
    previous bytea, pos bigint, st text, sid text, et text, received timestamptz,
    occurred timestamptz, readmitted bigint, body bytea
) RETURNS bytea
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT sha256(
        coalesce(previous, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea)
        || '\x02'::bytea
        || int8send(pos)
        || int4send(octet_length(convert_to(st, 'UTF8'))) || convert_to(st, 'UTF8')
        || int4send(octet_length(convert_to(sid, 'UTF8'))) || convert_to(sid, 'UTF8')
        || int4send(octet_length(convert_to(et, 'UTF8'))) || convert_to(et, 'UTF8')
        || int8send(tracker_micros(received))
        || CASE WHEN occurred IS NULL THEN '\x00'::bytea
                ELSE '\x01'::bytea || int8send(tracker_micros(occurred)) END
        || CASE WHEN readmitted IS NULL THEN '\x00'::bytea
                ELSE '\x01'::bytea || int8send(readmitted) END
        || int4send(octet_length(body)) || body)
$$;

-- The append draws its positions first, under the append lock (so in the order it inserts,
-- and nobody else draws meanwhile), so that each link can cover its own position. Otherwise as
-- in 008_platform_fidelity.sql.
CREATE OR REPLACE FUNCTION tracker_append(
    lock_key bigint, stream_types text[], stream_ids text[], event_types text[],
    bodies bytea[], stored bytea[], codecs smallint[], received timestamptz[],
    occurred timestamptz[], readmitted bigint[]
) RETURNS SETOF bigint
LANGUAGE plpgsql AS $$
DECLARE
    positions bigint[];
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    positions := ARRAY(
        SELECT nextval(pg_get_serial_sequence('events', 'position'))
        FROM generate_series(1, cardinality(stream_types))
        ORDER BY 1);
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
