-- tracker_horizon(): the followers' horizon, a position at or below which every event is
-- visible to a snapshot taken after this returns, or will never be. Two reads, in this order:
-- the last position drawn, then the in-flight markers of the appends (12_tracker_append_kept.sql);
-- read it before taking the snapshot that pages with it. The proof is in
-- tracker/store/horizon.py. Markers of appends to other schemas of the database count too: they
-- can only hold the horizon back while they are in flight, never move it past an event.
--
-- Markers count only where the session holding them belongs to a role that may append (EXECUTE
-- on tracker_append: the owner, the runtime role, superusers), or any login could freeze the
-- horizon (016_trust_boundaries.sql). A session's role is read from the activity of the
-- backends, cleared of any earlier read in this transaction so that it is taken after the last
-- position drawn was read: a backend it does not list connected later than that, so its marker
-- went up later too and all it can draw lies above that position. Prepared transactions (no
-- backend) never append.
--
-- It runs as its owner: a reader with SELECT on the tables alone (an auditor's role) may call
-- it without any right on the sequence; all it tells is the last position drawn.
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
        'ALTER FUNCTION tracker_horizon() SECURITY DEFINER '
        'SET search_path = pg_catalog, %I, pg_temp',
        current_schema());
END
$$;
