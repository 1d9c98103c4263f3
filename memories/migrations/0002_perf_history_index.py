"""History lookups by memory_id only, and room on each heap page for HOT updates.

The engine turns a deleted memory's history row into its DELETE event in place (text cleared, created_at set to
the deletion time). With created_at out of the index and free space left on each page (fillfactor), that UPDATE
is a HOT update: no index entry is written. The new index is built before the old one is dropped, both
CONCURRENTLY, so a live store keeps an index for history lookups and is not write-locked. The fillfactor applies
to pages written from now on (existing pages fill up as before until rewritten).
"""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models

HISTORY_FILLFACTOR = 85


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("memories", "0001_initial")]

    operations = [
        AddIndexConcurrently(
            model_name="memoryhistory",
            index=models.Index(fields=["memory_id"], name="history_memory_id_idx"),
        ),
        RemoveIndexConcurrently(model_name="memoryhistory", name="history_memory_idx"),
        migrations.RunSQL(
            f"ALTER TABLE memories_history SET (fillfactor = {HISTORY_FILLFACTOR})",
            reverse_sql="ALTER TABLE memories_history RESET (fillfactor)",
        ),
    ]
