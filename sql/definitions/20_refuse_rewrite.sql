-- Append-only, enforced by the database rather than by convention: a statement-level trigger
-- refuses UPDATE, DELETE and TRUNCATE even when they would touch no row. `refuse_rewrite()`
-- guards the tables that are never rewritten at all: the dictionaries bodies are compressed with
-- (every body compressed with one needs it to be read back) and the record of pruned bodies.
-- The log and the refusals have triggers of their own, which allow their one pruning path.
CREATE OR REPLACE FUNCTION refuse_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'history is never rewritten; append a new event instead';
END
$$;

DROP TRIGGER IF EXISTS body_codecs_append_only ON body_codecs;
CREATE TRIGGER body_codecs_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON body_codecs
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_rewrite();

DROP TRIGGER IF EXISTS pruned_bodies_append_only ON pruned_bodies;
CREATE TRIGGER pruned_bodies_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON pruned_bodies
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_rewrite();
