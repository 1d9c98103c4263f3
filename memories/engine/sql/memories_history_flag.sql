-- The history trigger: flags the memories new history rows belong to; refuses rows for memories that do not exist.
-- As deployed. A migration that changes it carries a frozen copy; tests/memories/test_engine_sql.py checks that
-- the database holds exactly this.
CREATE OR REPLACE FUNCTION public.memories_history_flag()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
DECLARE
    flagged integer;
BEGIN
    UPDATE memories_memory m SET has_history = true
    FROM (SELECT DISTINCT memory_id FROM inserted) n
    WHERE m.id = n.memory_id;
    GET DIAGNOSTICS flagged = ROW_COUNT;
    IF flagged <> (SELECT count(DISTINCT memory_id) FROM inserted) THEN
        RAISE EXCEPTION 'history rows for a memory that does not exist' USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $function$;

CREATE TRIGGER memories_history_flag AFTER INSERT ON public.memories_history REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION memories_history_flag();
