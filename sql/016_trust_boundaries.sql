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

-- The functions that run as their owner, as they are now: definitions/12_tracker_append_kept.sql
-- (which only the owner may call), 13_tracker_append.sql (the runtime role's, which takes no
-- time, lock or link) and 14_tracker_horizon.sql (which counts only the markers of roles that
-- may append); with the functions they call, 10_tracker_micros.sql and 11_tracker_link.sql.
