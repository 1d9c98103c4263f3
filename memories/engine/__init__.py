"""THE deletion engine: every path that removes memories goes through here (DESIGN.md "One deletion engine").

A job deletes its scope in keyset batches ordered by id (keyset.py). Each batch is one SQL statement (batch.py): it
selects the next memories of the scope after the cursor (an index range scan on (entity, id) that stops after a
batch) and hands the unheld ones to the server-side functions of sql/, which delete their history rows (the ones
holding text: UPDATE events) and record the batch's ids, ascending, as one MemoryTombstone row: the content-free
DELETE events. The job's counters and cursor are updated in the same transaction. Held rows are never deleted, and
are counted when the job ends.

The run (run.py) goes through named steps over one RunState: begin, lanes (lanes.py: the first pass of a large
scope split into child jobs run side by side), batches, straggler pass, end. Dispatch (dispatch.py) sends every
message for a job with a ticket, so however many copies of a message exist, exactly one chain of tasks works on a
job. When a job ends, its digest (digests.py) is the sha256 of its deleted ids in ascending order, 16 bytes each.

Modules: keyset (selection), batch (the statement, fast and careful), run (RunState and its steps), lanes,
dispatch (create/enqueue/continue/fail/retry/resume; the only one importing tasks), digests, reads (for
verification), maintenance (beat work), sql/ (the functions and trigger as deployed; tests/memories/
test_engine_sql.py proves the database holds exactly these)."""

from .batch import BatchResult, BatchStatement
from .digests import EMPTY_DIGEST, ids_digest, jobs_ids_digest
from .dispatch import (
    deletion_job_create,
    deletion_job_enqueue,
    deletion_job_fail,
    deletion_job_retry,
    deletion_jobs_resume_stale,
)
from .maintenance import memories_purge_expired, memories_tombstones_merge
from .reads import deletion_jobs_history_text_remaining, index_scans_only
from .run import RunResult, RunState, deletion_job_run, memories_delete_now

__all__ = [
    "EMPTY_DIGEST",
    "BatchResult",
    "BatchStatement",
    "RunResult",
    "RunState",
    "deletion_job_create",
    "deletion_job_enqueue",
    "deletion_job_fail",
    "deletion_job_retry",
    "deletion_job_run",
    "deletion_jobs_history_text_remaining",
    "deletion_jobs_resume_stale",
    "ids_digest",
    "index_scans_only",
    "jobs_ids_digest",
    "memories_delete_now",
    "memories_purge_expired",
    "memories_tombstones_merge",
]
