"""The fast batch statement reads its deleted ids back as the binary uuid[] it already builds (the engine takes their
16-byte values from it without a Python object per id: memories.engine._ids_bytes), so the record function no longer
needs to pack them: packing (string_agg of uuid_send over 10,000 ids) cost ~1.5 ms of the server's CPU per batch.
memories_delete_batch_record gets p_pack (default true: the careful function, which calls it with four arguments,
still gets its packed ids)."""

import importlib

from django.db import migrations

_0008 = importlib.import_module("memories.migrations.0008_fast_batches")

FUNCTION = """
CREATE FUNCTION memories_delete_batch_record(
    p_job uuid, p_batch integer, p_ids uuid[], p_history uuid[], p_pack boolean DEFAULT true,
    OUT deleted integer, OUT history_purged integer, OUT packed bytea
) LANGUAGE plpgsql AS $fn$
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
$fn$;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("memories", "0009_clear_scope_index"),
    ]

    operations = [
        migrations.RunSQL(
            "DROP FUNCTION memories_delete_batch_record(uuid, integer, uuid[], uuid[]);" + FUNCTION,
            "DROP FUNCTION memories_delete_batch_record(uuid, integer, uuid[], uuid[], boolean);" + _0008.FUNCTION,
        ),
    ]
