"""The deletion engine on real PostgreSQL: history purge, legal hold, exact counts, digest."""

import uuid

from memories.engine import chain_digest, deletion_job_create, deletion_job_run
from memories.models import DeletionJob, Memory, MemoryHistory
from memories.services import legal_hold_place, memories_add


def test_engine_deletes_scope_purges_history_and_skips_held(db):
    # given
    mine = memories_add(texts=[f"alice fact {i}" for i in range(25)], user_id="alice")
    other = memories_add(texts=["bob fact"], user_id="bob")
    held = memories_add(texts=["alice contract"], user_id="alice", agent_id="legal")
    legal_hold_place(
        scope={"user_id": "alice", "agent_id": "legal"}, reason="art17_3_e", note="", placed_by="t"
    )

    # when
    job = deletion_job_create(kind="filter", scope={"user_id": "alice"}, requested_by="test", enqueue=False)
    result = deletion_job_run(job_id=job.id, batch_size=7, budget_seconds=60)

    # then
    job.refresh_from_db()
    assert result.finished and job.status == DeletionJob.Status.SUCCEEDED
    assert job.deleted_count == 25 and job.held_count == 1 and job.history_purged_count == 25
    assert Memory.objects.filter(user_id="alice").count() == 1
    assert Memory.objects.filter(id=other[0].id).exists() and Memory.objects.filter(id=held[0].id).exists()
    deleted_ids = sorted(m.id for m in mine)
    events = MemoryHistory.objects.filter(memory_id__in=deleted_ids)
    assert set(events.values_list("event", flat=True)) == {"DELETE"}
    assert not events.exclude(old_memory=None).exists() and not events.exclude(new_memory=None).exists()
    assert job.digest == chain_digest("0" * 64, deleted_ids)
    assert job.scope is None and job.scope_pseudonymised["user_id"] != ["alice"]


def test_engine_resume_from_saved_cursor_gives_exact_counts(db):
    memories_add(texts=[f"t{i}" for i in range(30)], user_id="carol")
    job = deletion_job_create(kind="filter", scope={"user_id": "carol"}, requested_by="test", enqueue=False)
    first = deletion_job_run(job_id=job.id, batch_size=10, budget_seconds=0)
    assert not first.finished
    job.refresh_from_db()
    assert job.deleted_count == 10
    deletion_job_run(job_id=job.id, batch_size=10, budget_seconds=60)
    job.refresh_from_db()
    assert job.status == "SUCCEEDED" and job.deleted_count == 30
    assert not Memory.objects.filter(user_id="carol").exists()
    assert isinstance(job.id, uuid.UUID)
