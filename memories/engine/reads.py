"""Reads over what jobs left behind, for an erasure's verification: history text that should be gone, and
index-only counts right after a large delete."""

import contextlib
import uuid
from collections.abc import Iterator

from django.db import connection

from .keyset import HISTORY_TABLE, TOMBSTONE_TABLE


def deletion_jobs_history_text_remaining(*, job_ids: list[uuid.UUID]) -> int:
    """How many history rows still hold text for the memories that these jobs deleted (0 after a correct run: the
    batch statement deleted them). Looks up the memories that had history rows when they were deleted (each
    tombstone's history_ids; all its ids for tombstones written before those were recorded): a history row for
    any other deleted memory cannot exist, as none can be written for a memory that is gone (the history trigger,
    sql/memories_history_flag.sql) and writing one flags its memory. One query, each id looked up through
    history_memory_id_idx."""
    if not job_ids:
        return 0
    with connection.cursor() as cur:
        cur.execute(
            # = ANY(ARRAY(…)): an index scan with the ids as one array, never a hash join over the whole table
            f"""SELECT count(*) FROM {HISTORY_TABLE} h WHERE h.memory_id = ANY(ARRAY(
                    SELECT unnest(coalesce(t.history_ids, t.ids)) FROM {TOMBSTONE_TABLE} t WHERE t.job_id = ANY(%s)))
                AND (h.old_memory IS NOT NULL OR h.new_memory IS NOT NULL)""",
            [list(job_ids)],
        )
        (count,) = cur.fetchone()
    return int(count)


@contextlib.contextmanager
def index_scans_only() -> Iterator[None]:
    """Inside a transaction: the queries in the block read through indexes, not whole tables. Right after a large
    delete the planner's statistics still count the deleted rows as live (until autovacuum's next ANALYZE), so a
    count of a subject's memories that finds nothing would be planned as a scan of the whole table, a cost that
    grows with the store; through the (entity, id) index it only passes the deleted rows' entries."""
    assert connection.in_atomic_block, "SET LOCAL needs a transaction"
    with connection.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")
    try:
        yield
    finally:
        if connection.is_usable() and not connection.needs_rollback:
            with connection.cursor() as cur:
                cur.execute("SET LOCAL enable_seqscan = on")
