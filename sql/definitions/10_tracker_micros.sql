-- tracker_micros(at): microseconds since 1970, exactly on every supported PostgreSQL (extract's
-- epoch is a double before 14): whole seconds, then the fraction. Offsets of time zones are
-- whole seconds, so the session's zone changes neither part. The infinities are where asyncpg
-- puts them (it reads them as the first and last instants Python has, and writes those instants
-- as them). It runs inside the owner's functions, so pg_catalog's are named in full
-- (016_trust_boundaries.sql says why).
CREATE OR REPLACE FUNCTION tracker_micros(at timestamptz) RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN at = '-infinity' THEN -62135596800000000  -- 0001-01-01T00:00:00Z
        WHEN at = 'infinity' THEN 253402300799999999   -- 9999-12-31T23:59:59.999999Z
        ELSE extract(epoch FROM pg_catalog.date_trunc('second', at))::bigint * 1000000
             + extract(microseconds FROM at)::bigint % 1000000
    END
$$;
