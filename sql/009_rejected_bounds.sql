-- Bounding what refusals cost (issue 12, item 6):
-- - a refused body is kept up to a prefix (TRACKER_REJECTED_PREFIX_BYTES, 64 KiB by default),
--   with its whole `size` and `sha256`, so a flood of refused megabytes costs kilobytes, and
--   what was refused can still be recognised (NULL for a body never read in full: a 413);
-- - `tracker prune-rejected --before TIME` may delete old refusals, and only it: the table
--   stays append-only to everything else (UPDATE and TRUNCATE are refused always; DELETE unless
--   the deleting transaction says `SET LOCAL tracker.pruning = 'on'`, which the runtime role,
--   holding no DELETE privilege, cannot use anyway).
ALTER TABLE rejected ADD COLUMN size bigint, ADD COLUMN sha256 bytea;

-- (USER: a database created by this version has no trigger here yet, definitions/ adds it.)
ALTER TABLE rejected DISABLE TRIGGER USER;
UPDATE rejected SET size = octet_length(raw), sha256 = sha256(raw) WHERE NOT truncated;
ALTER TABLE rejected ENABLE TRIGGER USER;

-- The trigger that allows that one DELETE: definitions/21_rejected_append_only.sql.
