-- The careful batch's function (memories.engine.batch, fallback_sql): delete by address, else by id with RETURNING.
-- As deployed. A migration that changes it carries a frozen copy; tests/memories/test_engine_sql.py checks that
-- the database holds exactly this.
CREATE OR REPLACE FUNCTION public.memories_delete_batch(p_job uuid, p_batch integer, p_tids tid[], p_ids uuid[], p_history uuid[], OUT deleted integer, OUT history_purged integer, OUT ids uuid[], OUT packed bytea)
 RETURNS record
 LANGUAGE plpgsql
AS $function$
BEGIN
    deleted := 0;
    history_purged := 0;
    ids := coalesce(p_ids, '{}');
    packed := ''::bytea;
    IF cardinality(ids) = 0 THEN
        RETURN;
    END IF;
    BEGIN
        DELETE FROM memories_memory m WHERE m.ctid = ANY(p_tids) AND m.legal_hold_id IS NULL;
        GET DIAGNOSTICS deleted = ROW_COUNT;
        IF deleted <> cardinality(ids) THEN
            RAISE EXCEPTION 'memories changed since the batch selected them' USING ERRCODE = 'EB001';
        END IF;
    EXCEPTION WHEN SQLSTATE 'EB001' THEN
        WITH d AS (
            DELETE FROM memories_memory m WHERE m.id = ANY(p_ids) AND m.legal_hold_id IS NULL
            RETURNING m.id, m.has_history
        )
        SELECT count(*), coalesce(array_agg(d.id ORDER BY d.id), '{}'),
               coalesce(array_agg(d.id) FILTER (WHERE d.has_history), '{}')
        INTO deleted, ids, p_history
        FROM d;
    END;
    IF deleted = 0 THEN
        RETURN;
    END IF;
    SELECT r.history_purged, r.packed INTO history_purged, packed
    FROM memories_delete_batch_record(p_job, p_batch, ids, p_history) AS r;
END
$function$;
