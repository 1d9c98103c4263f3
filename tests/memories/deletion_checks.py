"""Exact checks of what a finished deletion job leaves behind (shared by the engine and API tests).

What the engine promises for every memory a job deleted: the memory is gone; no row of any kind is left for it in
memories_history (its UPDATE rows and any legacy ADD/DELETE rows were deleted in the batch's transaction, so no text
remains); its content-free DELETE event is recorded exactly once, in one of the job's tombstones (one per batch that
deleted something, numbered 1..job.batches, ids ascending); and the history selector answers exactly that one
event. The job's counters are exact: deleted_count, held_count, history_purged_count (history rows deleted, so
0 for a memory that never had one) and the digest over the sorted deleted ids. A large job's lanes (child jobs)
hold the tombstones of the id ranges they deleted; the job's counters include theirs."""

import uuid
from collections.abc import Iterable

from django.db.models import F

from memories.engine import ids_digest
from memories.models import DeletionJob, Memory, MemoryHistory, MemoryTombstone
from memories.selectors import memory_history


def history_rows(memory_ids: Iterable[uuid.UUID]) -> int:
    """How many memories_history rows these memories have (what deleting them must purge)."""
    return MemoryHistory.objects.filter(memory_id__in=list(memory_ids)).count()


def lanes_of(job: DeletionJob) -> list[DeletionJob]:
    """The job's lanes (child jobs that deleted consecutive id ranges of its first pass), in id order."""
    return list(DeletionJob.objects.filter(parent=job).order_by(F("cursor_end").asc(nulls_last=True)))


def tombstones_of(job: DeletionJob) -> list[MemoryTombstone]:
    """The job's DELETE events: its own tombstones and its lanes', batch by batch."""
    jobs = [job, *lanes_of(job)]
    return sorted(
        MemoryTombstone.objects.filter(job__in=jobs),
        key=lambda t: ([j.id for j in jobs].index(t.job_id), t.batch),
    )


def assert_delete_event(memory_id: uuid.UUID, tombstone: MemoryTombstone) -> None:
    """The history of a deleted memory, as the selector (hence the API) answers it: one DELETE event, no text,
    dated by the tombstone that records it."""
    events = memory_history(memory_id=memory_id)
    assert events is not None, f"no history at all for deleted memory {memory_id}"
    assert len(events) == 1, [(e.event, e.new_memory) for e in events]
    (event,) = events
    assert event.memory_id == memory_id and event.event == "DELETE"
    assert event.old_memory is None and event.new_memory is None and event.categories == []
    assert event.created_at == tombstone.created_at


def assert_deleted_exactly(
    job: DeletionJob,
    ids: Iterable[uuid.UUID],
    *,
    history_purged: int,
    held: int = 0,
    events_sample: int | None = None,
) -> list[MemoryTombstone]:
    """Asserts the job SUCCEEDED and deleted exactly `ids` (see the module docstring). The selector is asked about
    every id, or about `events_sample` of them spread over the range (plus the first and last) for large jobs.
    Returns the job's tombstones."""
    job.refresh_from_db()
    ids = sorted(set(ids))
    assert job.status == DeletionJob.Status.SUCCEEDED, (job.status, job.error)
    assert (job.deleted_count, job.held_count, job.history_purged_count) == (len(ids), held, history_purged)
    assert job.digest == ids_digest(ids)
    assert not Memory.objects.filter(id__in=ids).exists()
    assert not MemoryHistory.objects.filter(memory_id__in=ids).exists(), (
        "history rows left for deleted memories"
    )

    lanes = lanes_of(job)
    assert all(lane.status == DeletionJob.Status.SUCCEEDED and lane.scope is None for lane in lanes)
    tombstones = tombstones_of(job)
    # each job (the job, its lanes) numbers its own batches 1..n; the job's count includes its lanes'
    own = {
        job.id: job.batches - sum(lane.batches for lane in lanes),
        **{lane.id: lane.batches for lane in lanes},
    }
    for owner, count in own.items():
        assert [t.batch for t in tombstones if t.job_id == owner] == list(range(1, count + 1))
    for tombstone in tombstones:
        assert tombstone.ids and tombstone.ids == sorted(tombstone.ids)
        # (its created_at is the batch transaction's now(): under the `db` fixture, the test's transaction start)
        assert tombstone.created_at <= job.finished_at
    recorded = [memory_id for tombstone in tombstones for memory_id in tombstone.ids]
    assert len(recorded) == len(ids) and sorted(recorded) == ids  # each deleted id exactly once, nothing else
    wanted = set(ids)
    for other in MemoryTombstone.objects.exclude(job__in=[job, *lanes]).values_list("ids", flat=True):
        assert not wanted.intersection(other), "another job's tombstone records a memory this job deleted"

    tombstone_of = {memory_id: tombstone for tombstone in tombstones for memory_id in tombstone.ids}
    checked = ids
    if events_sample is not None and len(ids) > events_sample:
        step = len(ids) // events_sample
        checked = sorted({ids[0], ids[-1], *ids[::step]})
    for memory_id in checked:
        assert_delete_event(memory_id, tombstone_of[memory_id])
    return tombstones
