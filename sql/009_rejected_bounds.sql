-- Bounding what refusals cost (issue 12, item 6):
-- - a refused body is kept up to a prefix (TRACKER_REJECTED_PREFIX_BYTES, 64 KiB by default),
--   with its whole `size` and `sha256`, so a flood of refused megabytes costs kilobytes, and
--   what was refused can still be recognised (NULL for a body never read in full: a 413);
-- - `tracker prune-rejected --before TIME` may delete old refusals, and only it: the table
--   stays append-only to everything else (UPDATE and TRUNCATE are refused always; DELETE unless
--   the deleting transaction says `SET LOCAL tracker.pruning = 'on'`, which the runtime role,
--   holding no DELETE privilege, cannot use anyway).
ALTER TABLE rejected ADD COLUMN size bigint, ADD COLUMN sha256 bytea;

ALTER TABLE rejected DISABLE TRIGGER rejected_append_only;
UPDATE rejected SET size = octet_length(raw), sha256 = sha256(raw) WHERE NOT truncated;
ALTER TABLE rejected ENABLE TRIGGER rejected_append_only;

CREATE FUNCTION refuse_rewrite_unless_pruning() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('tracker.pruning', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'old refusals are removed with tracker prune-rejected --before TIME';
END
$$;
DROP TRIGGER rejected_append_only ON rejected;
CREATE TRIGGER rejected_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON rejected
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_rewrite_unless_pruning();
