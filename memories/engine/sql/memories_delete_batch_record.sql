-- What every batch leaves behind: its memories' history rows deleted, its ids recorded as one tombstone.
-- As deployed. A migration that changes it carries a frozen copy; tests/memories/test_engine_sql.py checks that
-- the database holds exactly this.
CREATE OR REPLACE FUNCTION public.memories_delete_batch_record(p_job uuid, p_batch integer, p_ids uuid[], p_history uuid[], p_pack boolean DEFAULT true, OUT deleted integer, OUT history_purged integer, OUT packed bytea)
 RETURNS record
 LANGUAGE plpgsql
AS $function$
BEGIN
    deleted := coalesce(cardinality(p_ids), 0);
    history_purged := 0;
    packed := ''::bytea;
    IF deleted = 0 THEN
        RETURN;
    END IF;
    IF cardinality(p_history) > 0 THEN
        DELETE FROM memories_history h WHERE h.memory_id = ANY(p_history);
        GET DIAGNOSTICS history_purged = ROW_COUNT;
    END IF;
    INSERT INTO memories_tombstone (job_id, batch, ids, history_ids, created_at)
        VALUES (p_job, p_batch, p_ids, coalesce(p_history, '{}'), now());
    IF p_pack THEN
        SELECT string_agg(uuid_send(u.id), ''::bytea) INTO packed FROM unnest(p_ids) AS u(id);
    END IF;
END
$function$;
