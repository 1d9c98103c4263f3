"""The engine's SQL functions and the history trigger as deployed (memories/engine/sql/*.sql), written out whole
instead of as migrations rewriting each other's strings (0005 → 0007 → 0008 → 0010). Re-creating them changes
nothing; from here on each migration that changes one carries its full definition, frozen: a migration never reads
the live .sql file, which will change after it."""

from django.db import migrations

# frozen copies of memories/engine/sql/*.sql as of this migration
RECORD_FUNCTION = """
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
"""

CAREFUL_FUNCTION = """
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
"""

HISTORY_TRIGGER = """
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

DROP TRIGGER memories_history_flag ON public.memories_history;
CREATE TRIGGER memories_history_flag AFTER INSERT ON public.memories_history REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION memories_history_flag();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("memories", "0010_batch_ids_unpacked"),
    ]

    operations = [
        migrations.RunSQL(RECORD_FUNCTION, migrations.RunSQL.noop),
        migrations.RunSQL(CAREFUL_FUNCTION, migrations.RunSQL.noop),
        migrations.RunSQL(HISTORY_TRIGGER, migrations.RunSQL.noop),
    ]
