"""How the engine leaves a deleted memory's history (real PostgreSQL, no worker): whatever the memory's history
was (none, ADD, ADD + UPDATEs), exactly one content-free DELETE event dated at the deletion; and a text update
that commits while a batch waits on the memory's row lock leaves no text behind."""

import threading
import time

from django.db import connections, transaction
from django.utils import timezone

from memories.engine import deletion_job_create, deletion_job_run
from memories.models import Memory, MemoryHistory
from memories.services import memories_add, memory_update


def _new_job(scope):
    return deletion_job_create(kind="filter", scope=scope, requested_by="test", enqueue=False)


def test_every_deleted_memory_ends_with_one_content_free_delete_event_dated_at_deletion(transactional_db):
    # given: one memory without any history row, one with ADD only, one with ADD + two UPDATEs
    bare = Memory.objects.create(text="bare secret", hash="h", user_id="kim")
    added, updated = memories_add(texts=["added secret", "updated secret"], user_id="kim")
    memory_update(memory=updated, text="updated secret 2")
    memory_update(memory=updated, text="updated secret 3")
    other = memories_add(texts=["other secret"], user_id="lou")[0]
    started = timezone.now()

    # when
    result = deletion_job_run(job_id=_new_job({"user_id": "kim"}).id, budget_seconds=60)

    # then
    job = result.job
    assert result.finished and job.deleted_count == 3 and job.history_purged_count == 1 + 3
    for memory in (bare, added, updated):
        (event,) = MemoryHistory.objects.filter(memory_id=memory.id)
        assert event.event == "DELETE" and event.old_memory is None and event.new_memory is None
        assert event.categories == [] and event.created_at >= started
    assert (
        not MemoryHistory.objects.filter(new_memory__contains="secret").exclude(memory_id=other.id).exists()
    )
    assert not MemoryHistory.objects.filter(old_memory__contains="secret").exists()
    assert MemoryHistory.objects.get(memory_id=other.id).event == "ADD"


def test_a_text_update_committed_while_the_batch_waits_leaves_no_text_behind(transactional_db):
    # given: a memory whose row is locked by an update in flight (new text, UPDATE history row with text)
    mine = memories_add(texts=[f"m{i}" for i in range(6)], user_id="max")
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

    # then: every memory is gone, and so is the text the late update wrote
    job.refresh_from_db()
    assert job.status == "SUCCEEDED" and job.deleted_count == 6
    assert not Memory.objects.filter(user_id="max").exists()
    assert not MemoryHistory.objects.filter(new_memory__contains="late secret").exists()
    assert not MemoryHistory.objects.filter(
        old_memory__isnull=False, memory_id__in=[m.id for m in mine]
    ).exists()
    assert MemoryHistory.objects.filter(memory_id__in=[m.id for m in mine], event="DELETE").count() == 6
