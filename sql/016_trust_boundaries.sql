-- What the database trusts (issue 21). Three holes, closed at their cause:
--
-- 1. A schema that others may CREATE in lets them run code as the definer of a SECURITY
--    DEFINER function: a `public.cardinality(text[])` matches a call better than the built-in
--    `cardinality(anyarray)` does, and ran as the owner. CREATE on the tracker's schema is
--    revoked from PUBLIC here (the default before PostgreSQL 15, and kept by databases upgraded
--    from 14); `tracker serve` refuses to start while PUBLIC or the runtime role could create
--    there (tracker/store/trust.py); and the functions that run as their owner call
--    `pg_catalog`'s functions by their full name, so a look-alike elsewhere is never chosen.
-- 2. `tracker_append` let its caller choose the receive time, the lock it took (so it could
--    skip the lock replay's swap holds) and the readmission link (to a refusal that does not
--    exist); the chain then covered the forgery and `verify` passed. The runtime role's append
--    now takes none of them: the database stamps the time, the lock is fixed, and nothing is
--    readmitted. Import and readmission keep their times and links through
--    `tracker_append_kept`, which only the owner may call and which checks each link against
--    the refusal it names.
-- 3. Any login could take an in-flight marker's advisory lock and freeze the followers'
--    horizon. `tracker_horizon()` now counts only markers held by sessions of roles that may
--    append (EXECUTE on tracker_append: the owner, the runtime role, superusers).

DO $$
BEGIN
    EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM PUBLIC', current_schema());
END
$$;

-- As in 011_chain_all_fields.sql, with pg_catalog's functions named in full: they run inside
-- the owner's functions.
CREATE OR REPLACE FUNCTION tracker_micros(at timestamptz) RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN at = '-infinity' THEN -62135596800000000  -- 0001-01-01T00:00:00Z
        WHEN at = 'infinity' THEN 253402300799999999   -- 9999-12-31T23:59:59.999999Z
        ELSE extract(epoch FROM pg_catalog.date_trunc('second', at))::bigint * 1000000
             + extract(microseconds FROM at)::bigint % 1000000
    END
$$;

CREATE OR REPLACE FUNCTION tracker_link(
    previous bytea, pos bigint, st text, sid text, et text, received timestamptz,
    occurred timestamptz, readmitted bigint, body bytea
) RETURNS bytea
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT pg_catalog.sha256(
        coalesce(previous, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea)
        || '\x02'::bytea
        || pg_catalog.int8send(pos)
        || pg_catalog.int4send(pg_catalog.octet_length(pg_catalog.convert_to(st, 'UTF8')))
        || pg_catalog.convert_to(st, 'UTF8')
        || pg_catalog.int4send(pg_catalog.octet_length(pg_catalog.convert_to(sid, 'UTF8')))
        || pg_catalog.convert_to(sid, 'UTF8')
        || pg_catalog.int4send(pg_catalog.octet_length(pg_catalog.convert_to(et, 'UTF8')))
        || pg_catalog.convert_to(et, 'UTF8')
        || pg_catalog.int8send(tracker_micros(received))
        || CASE WHEN occurred IS NULL THEN '\x00'::bytea
                ELSE '\x01'::bytea || pg_catalog.int8send(tracker_micros(occurred)) END
        || CASE WHEN readmitted IS NULL THEN '\x00'::bytea
                ELSE '\x01'::bytea || pg_catalog.int8send(readmitted) END
        || pg_catalog.int4send(pg_catalog.octet_length(body)) || body)
$$;

DROP FUNCTION tracker_append(bigint, text[], text[], text[], bytea[], bytea[], smallint[],
                             timestamptz[], timestamptz[], bigint[]);

-- The append with every stored field given: for `tracker readmit` (a refusal's receive time
-- and its id, which must name a refusal received then) and `tracker import` (`restoring`: the
-- exported times and links of another log, whose refusals are not here), run by the owner
-- alone. The locks, the marker and the chain are as in 013_parallel_append.sql.
CREATE FUNCTION tracker_append_kept(
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

-- The runtime role's append: the batch as delivered, received now (one time for the batch, the
-- database's clock), never readmitted. Runs as its owner, so it may call the one above.
CREATE FUNCTION tracker_append(
    stream_types text[], stream_ids text[], event_types text[], bodies bytea[], stored bytea[],
    codecs smallint[], occurred timestamptz[]
) RETURNS TABLE (appended bigint, received_at timestamptz)
LANGUAGE sql VOLATILE AS $$
    SELECT k.appended, k.received_at
    FROM tracker_append_kept(
        stream_types, stream_ids, event_types, bodies, stored, codecs,
        pg_catalog.array_fill(pg_catalog.clock_timestamp(),
                              ARRAY[pg_catalog.cardinality(stream_types)]),
        occurred,
        pg_catalog.array_fill(NULL::bigint, ARRAY[pg_catalog.cardinality(stream_types)]),
        false) AS k
$$;
REVOKE EXECUTE ON FUNCTION tracker_append(text[], text[], text[], bytea[], bytea[], smallint[],
    timestamptz[]) FROM PUBLIC;

-- Markers count only where the session holding them belongs to a role that may append. A
-- session's role is read from the activity of the backends, cleared of any earlier read in
-- this transaction so that it is taken after the last position drawn was read: a backend it
-- does not list connected later than that, so its marker went up later too and all it can
-- draw lies above that position (the argument of tracker/store/horizon.py still holds).
-- Prepared transactions (no backend) never append.
CREATE OR REPLACE FUNCTION tracker_horizon() RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    drawn bigint;
    in_flight bigint;
BEGIN
    drawn := coalesce(pg_catalog.pg_sequence_last_value(
        pg_catalog.pg_get_serial_sequence('events', 'position')::regclass), 0);
    PERFORM pg_catalog.pg_stat_clear_snapshot();
    SELECT pg_catalog.min(m.key) INTO in_flight
    FROM (
        SELECT ((l.classid::bigint & 65535) << 32) | l.objid::bigint AS key, l.pid
        FROM pg_catalog.pg_locks l
        WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted  -- a 64-bit key
          AND l.classid::bigint >> 16 = 29300  -- its top 16 bits: MARKER
          AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d
                            WHERE d.datname = pg_catalog.current_database())
    ) AS m
    WHERE EXISTS (
        SELECT FROM pg_catalog.pg_stat_get_activity(m.pid) AS a
        WHERE pg_catalog.has_function_privilege(
            a.usesysid,
            'tracker_append(text[], text[], text[], bytea[], bytea[], smallint[], timestamptz[])'::regprocedure,
            'EXECUTE'));
    RETURN least(drawn, in_flight);  -- least() ignores a null: no append in flight
END
$$;

DO $$
BEGIN
    EXECUTE format(
        'ALTER FUNCTION tracker_append(text[], text[], text[], bytea[], bytea[], smallint[], '
        'timestamptz[]) SECURITY DEFINER SET search_path = pg_catalog, %I, pg_temp',
        current_schema());
    EXECUTE format(
        'ALTER FUNCTION tracker_horizon() SECURITY DEFINER SET search_path = pg_catalog, %I, pg_temp',
        current_schema());
END
$$;

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
    EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA %I TO %I', current_schema(), grantee);
    EXECUTE format('GRANT EXECUTE ON FUNCTION tracker_append(text[], text[], text[], bytea[], '
                   'bytea[], smallint[], timestamptz[]) TO %I', grantee);
END
$fn$;
SELECT tracker_grant_runtime();
