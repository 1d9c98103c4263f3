"""The fast batch statement reads its deleted ids back as the binary uuid[] it already builds (the engine takes their
16-byte values from it without a Python object per id: memories.engine._ids_bytes), so the record function no longer
needs to pack them: packing (string_agg of uuid_send over 10,000 ids) cost ~1.5 ms of the server's CPU per batch.
memories_delete_batch_record gets p_pack (default true: the careful function, which calls it with four arguments,
still gets its packed ids)."""

import importlib

from django.db import migrations

_0008 = importlib.import_module("memories.migrations.0008_fast_batches")

_PACK = "    SELECT string_agg(uuid_send(u.id), ''::bytea) INTO packed FROM unnest(p_ids) AS u(id);\n"
_PARAMS = "p_job uuid, p_batch integer, p_ids uuid[], p_history uuid[],\n"
assert _PACK in _0008.FUNCTION and _PARAMS in _0008.FUNCTION
# 0008's record function with p_pack, packing only when asked
FUNCTION = (
    _0008.FUNCTION.replace("CREATE OR REPLACE FUNCTION", "CREATE FUNCTION")
    .replace(_PARAMS, _PARAMS.replace(",\n", ", p_pack boolean DEFAULT true,\n"))
    .replace(_PACK, "    IF p_pack THEN\n    " + _PACK + "    END IF;\n")
)


class Migration(migrations.Migration):
    dependencies = [
        ("memories", "0009_clear_scope_index"),
    ]

    operations = [
        migrations.RunSQL(
            "DROP FUNCTION memories_delete_batch_record(uuid, integer, uuid[], uuid[]);" + FUNCTION,
            "DROP FUNCTION memories_delete_batch_record(uuid, integer, uuid[], uuid[], boolean);"
            + _0008.FUNCTION,
        ),
    ]
