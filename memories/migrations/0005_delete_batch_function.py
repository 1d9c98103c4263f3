"""The second half of the engine's batch (memories/engine.py, _BatchStatement) as a server-side function.

The batch statement selects the next memories of the scope (index scan on (entity, id), ids ascending) and hands
their physical addresses and ids to memories_delete_batch, which deletes them by address. A DELETE inside one
statement can only report the rows it removed through RETURNING, which re-reads every deleted tuple; here the
function counts them (ROW_COUNT) instead: when every selected row was deleted, the deleted ids are exactly the
selected ones. When a row changed since the selection (updated, held or deleted by another transaction meanwhile:
its address no longer holds a live, unheld version), the count falls short; the address-based delete is then
rolled back (the block's subtransaction) and the batch's rows are deleted by id with RETURNING, which follows an
updated row to its new version and tells exactly which rows this batch removed.

Each statement of the function takes a new snapshot (READ COMMITTED), so the history delete sees the UPDATE event
of a row updated while the batch waited for its lock. History rows are only looked up for memories whose
has_history flag is set (the trigger of migration 0004 keeps it). The deleted ids, ascending, become one tombstone
row, and are returned packed (16 bytes each) for the job's running digest.
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION memories_delete_batch(
    p_job uuid, p_batch integer, p_tids tid[], p_ids uuid[], p_history uuid[],
    OUT deleted integer, OUT history_purged integer, OUT ids uuid[], OUT packed bytea
) LANGUAGE plpgsql AS $fn$
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
    IF cardinality(p_history) > 0 THEN
        DELETE FROM memories_history h WHERE h.memory_id = ANY(p_history);
        GET DIAGNOSTICS history_purged = ROW_COUNT;
    END IF;
    INSERT INTO memories_tombstone (job_id, batch, ids, created_at) VALUES (p_job, p_batch, ids, now());
    SELECT string_agg(uuid_send(u.id), ''::bytea) INTO packed FROM unnest(ids) AS u(id);
END
$fn$;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("memories", "0004_history_derived_tombstones"),
    ]

    operations = [
        migrations.RunSQL(
            FUNCTION,
            "DROP FUNCTION memories_delete_batch(uuid, integer, tid[], uuid[], uuid[]);",
        ),
    ]
