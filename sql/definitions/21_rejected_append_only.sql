-- `rejected` is append-only (UPDATE and TRUNCATE are refused always), except that
-- `tracker prune-rejected --before TIME` may delete old refusals, in a transaction that says
-- `SET LOCAL tracker.pruning = 'on'`; the runtime role, holding no DELETE privilege, cannot use
-- it anyway (009_rejected_bounds.sql).
CREATE OR REPLACE FUNCTION refuse_rewrite_unless_pruning() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('tracker.pruning', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'old refusals are removed with tracker prune-rejected --before TIME';
END
$$;

DROP TRIGGER IF EXISTS rejected_append_only ON rejected;
CREATE TRIGGER rejected_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON rejected
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_rewrite_unless_pruning();
