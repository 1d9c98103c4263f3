"""How the engine leaves a deleted memory's history (real PostgreSQL, no worker): whatever the memory's history
was (none, UPDATEs, a legacy ADD row, a legacy DELETE row), no history row is left and exactly one content-free
DELETE event, dated at the deletion, is recorded in a tombstone and answered by the selector; and a text update
that commits while a batch waits on the memory's row lock leaves no text behind."""

import os
import threading
import time
import uuid

import pytest
from django.db import IntegrityError, connections, transaction
from django.utils import timezone

from memories.engine import deletion_job_create, deletion_job_run
from memories.ids import uuid7
from memories.models import Memory, MemoryHistory
from memories.selectors import memory_history
from memories.services import memories_add, memory_update
from tests.memories.deletion_checks import assert_deleted_exactly


def _new_job(scope):
    return deletion_job_create(kind="filter", scope=scope, requested_by="test", enqueue=False)


def _uuid7_at(seconds_ago: float) -> uuid.UUID:
    """A UUIDv7 as memories.ids.uuid7 would have generated it `seconds_ago`: a memory written long ago."""
    ms = int((time.time() - seconds_ago) * 1000)
    rand = int.from_bytes(os.urandom(10), "big")
    value = ms << 80 | 0x7 << 76 | ((rand >> 62) & 0xFFF) << 64 | 0b10 << 62 | rand & ((1 << 62) - 1)
    return uuid.UUID(int=value)


def test_every_deleted_memory_ends_with_one_content_free_delete_event_dated_at_deletion(transactional_db):
    # given: memories without any history row (created directly, and through memories_add), one with two UPDATEs,
    # one with a legacy ADD row and one with legacy ADD + DELETE rows (as earlier versions wrote them)
    bare = Memory.objects.create(text="bare secret", hash="h", user_id="kim")
    added, updated = memories_add(texts=["added secret", "updated secret"], user_id="kim")
    memory_update(memory=updated, text="updated secret 2")
    memory_update(memory=updated, text="updated secret 3")
    legacy = Memory.objects.create(text="legacy secret", hash="h", user_id="kim", categories=["c"])
    MemoryHistory.objects.create(
        memory_id=legacy.id, event="ADD", new_memory="legacy secret", categories=["c"]
    )
    legacy_deleted = Memory.objects.create(text="legacy secret 2", hash="h", user_id="kim")
    MemoryHistory.objects.create(memory_id=legacy_deleted.id, event="ADD", new_memory="legacy secret 2")
    MemoryHistory.objects.create(memory_id=legacy_deleted.id, event="DELETE")
    other = memories_add(texts=["other secret"], user_id="lou")[0]
    memory_update(memory=other, text="other secret 2")
    kim = [bare, added, updated, legacy, legacy_deleted]
    assert [Memory.objects.get(id=m.id).has_history for m in kim] == [False, False, True, True, True]
    started = timezone.now()

    # when
    result = deletion_job_run(job_id=_new_job({"user_id": "kim"}).id, budget_seconds=60)

    # then: 2 UPDATE rows + 1 legacy ADD row + 2 legacy rows purged; nothing of kim's is left in history
    assert result.finished
    (tombstone,) = assert_deleted_exactly(result.job, [m.id for m in kim], history_purged=2 + 1 + 2)
    assert started <= tombstone.created_at <= timezone.now()
    # the memories that had history rows are listed for verifications (the others cannot have any left)
    assert sorted(tombstone.history_ids) == sorted([updated.id, legacy.id, legacy_deleted.id])
    for memory in kim:
        (event,) = memory_history(memory_id=memory.id)
        assert event.event == "DELETE" and event.created_at == tombstone.created_at
    # the only text left in history is the memory that was not deleted, untouched
    assert list(MemoryHistory.objects.values_list("memory_id", "event", "old_memory", "new_memory")) == [
        (other.id, "UPDATE", "other secret", "other secret 2")
    ]
    assert [(e.event, e.new_memory) for e in memory_history(memory_id=other.id)] == [
        ("ADD", "other secret"),
        ("UPDATE", "other secret 2"),
    ]


def test_no_history_row_can_be_written_for_a_memory_that_does_not_exist(transactional_db):
    gone = Memory.objects.create(text="gone", hash="h", user_id="kim")
    Memory.objects.filter(id=gone.id).delete()
    with pytest.raises(IntegrityError):
        MemoryHistory.objects.create(memory_id=gone.id, event="UPDATE", old_memory="a", new_memory="b")
    # a statement mixing rows for existing and missing memories is refused as a whole
    kept = Memory.objects.create(text="kept", hash="h", user_id="kim")
    with pytest.raises(IntegrityError):
        MemoryHistory.objects.bulk_create(
            [
                MemoryHistory(memory_id=kept.id, event="UPDATE"),
                MemoryHistory(memory_id=gone.id, event="UPDATE"),
            ]
        )
    assert not MemoryHistory.objects.exists() and not Memory.objects.get(id=kept.id).has_history


@pytest.mark.parametrize(
    "age",
    [
        pytest.param(0, id="written-now"),
        # older than the straggler margin (DELETION_STRAGGLER_MARGIN_SECONDS): most memories an erasure deletes
        pytest.param(24 * 3600, id="written-a-day-ago"),
    ],
)
def test_a_text_update_committed_while_the_batch_waits_leaves_no_text_behind(transactional_db, age, caplog):
    # given: six memories of max (one with an UPDATE row already), one of them locked by an update in flight
    # (new text, and an UPDATE history row with text, committed only once the batch waits on the row)
    ids = sorted(_uuid7_at(age) if age else uuid7() for _ in range(6))
    mine = [Memory.objects.create(id=i, text=f"m{n}", hash="h", user_id="max") for n, i in enumerate(ids)]
    memory_update(memory=mine[1], text="m1 changed")
    target = mine[3]
    locked, release = threading.Event(), threading.Event()

    def update_and_hold():
        with transaction.atomic():
            memory_update(memory=target, text="late secret")
            locked.set()
            release.wait(10)
        connections.close_all()

    updater = threading.Thread(target=update_and_hold)
    updater.start()
    locked.wait(10)
    job = _new_job({"user_id": "max"})
    runner = threading.Thread(
        target=lambda: (
            deletion_job_run(job_id=job.id, batch_size=100, budget_seconds=60),
            connections.close_all(),
        )
    )

    # when: the batch blocks on the locked row, then the update commits
    runner.start()
    time.sleep(0.5)
    assert runner.is_alive(), "the batch should be waiting on the row lock"
    release.set()
    updater.join(10)
    runner.join(30)

    # then: every memory is gone, and so is the text the late update wrote (its UPDATE row was purged)
    assert not runner.is_alive()
    assert not Memory.objects.filter(user_id="max").exists()
    assert not MemoryHistory.objects.filter(new_memory__contains="late secret").exists()
    assert_deleted_exactly(job, ids, history_purged=2)
    # the row changed under the fast statement (new version, now with history): its batch was redone carefully
    assert "redone by the careful statement" in caplog.text
