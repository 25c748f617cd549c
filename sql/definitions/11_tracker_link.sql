-- tracker_link(...): a link of version 2 of a stream's hash chain, over every stored field of
-- the event and the body as received (011_chain_all_fields.sql says why).
-- tracker/store/chain.py computes the same bytes for `tracker verify` and lays them out. It
-- runs inside the owner's functions, so pg_catalog's are named in full.
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
