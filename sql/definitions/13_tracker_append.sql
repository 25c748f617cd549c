-- tracker_append(...): the runtime role's append, the only way it may write to the log. The
-- batch as delivered, received now (one time for the batch, the database's clock), never
-- readmitted: the caller chooses no receive time, lock or readmission link
-- (016_trust_boundaries.sql). It runs as its owner (SECURITY DEFINER), with a search_path that
-- puts pg_catalog first and then this schema, so it may call `tracker_append_kept` and no
-- object of the caller's can stand in for ours; only the runtime role may call it
-- (90_tracker_grant_runtime.sql).

-- Its signatures before 016, in which the caller chose the lock, the times and the links.
DROP FUNCTION IF EXISTS tracker_append(bigint, text[], text[], text[], text[], bytea[],
                                       timestamptz[], timestamptz[]);
DROP FUNCTION IF EXISTS tracker_append(bigint, text[], text[], text[], bytea[], bytea[],
                                       smallint[], timestamptz[], timestamptz[]);
DROP FUNCTION IF EXISTS tracker_append(bigint, text[], text[], text[], bytea[], bytea[],
                                       smallint[], timestamptz[], timestamptz[], bigint[]);

CREATE OR REPLACE FUNCTION tracker_append(
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
DO $$
BEGIN
    EXECUTE format(
        'ALTER FUNCTION tracker_append(text[], text[], text[], bytea[], bytea[], smallint[], '
        'timestamptz[]) SECURITY DEFINER SET search_path = pg_catalog, %I, pg_temp',
        current_schema());
END
$$;
