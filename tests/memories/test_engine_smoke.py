"""The deletion engine on real PostgreSQL: history purge, legal hold, exact counts, digest."""

import uuid

import pytest

from memories.engine import deletion_job_create, deletion_job_run
from memories.models import DeletionJob, Memory, MemoryHistory
from memories.selectors import memory_history
from memories.services import legal_hold_place, memories_add, memory_update
from tests.memories.deletion_checks import assert_deleted_exactly, history_rows


def test_engine_deletes_scope_purges_history_and_skips_held(db):
    # given: 25 memories of alice, 7 of them updated (one twice: 8 UPDATE rows), the others without any history
    # row; a held memory of alice with an UPDATE row; bob's memory with an UPDATE row
    mine = memories_add(texts=[f"alice fact {i}" for i in range(25)], user_id="alice")
    for memory in mine[::4]:
        memory_update(memory=memory, text=f"alice fact changed {memory.id}")
    memory_update(memory=mine[0], text="alice fact changed twice")
    other = memories_add(texts=["bob fact"], user_id="bob")
    memory_update(memory=other[0], text="bob fact 2")
    held = memories_add(texts=["alice contract"], user_id="alice", agent_id="legal")
    memory_update(memory=held[0], text="alice contract v2")
    legal_hold_place(
        scope={"user_id": "alice", "agent_id": "legal"}, reason="art17_3_e", note="", placed_by="t"
    )
    assert history_rows(m.id for m in mine) == 8
    assert Memory.objects.filter(id__in=[m.id for m in mine], has_history=True).count() == 7

    # when
    job = deletion_job_create(kind="filter", scope={"user_id": "alice"}, requested_by="test", enqueue=False)
    result = deletion_job_run(job_id=job.id, batch_size=7, budget_seconds=60)

    # then: the 25 are gone with their history, each with one DELETE event in a tombstone
    assert result.finished
    deleted_ids = sorted(m.id for m in mine)
    tombstones = assert_deleted_exactly(job, deleted_ids, history_purged=8, held=1)
    assert len(tombstones) == 4  # 26 rows of alice in batches of 7, the held one skipped
    # the held memory and bob's memory keep their memory row and their UPDATE history, text included
    assert Memory.objects.filter(user_id="alice").get().id == held[0].id
    assert Memory.objects.filter(id=other[0].id).exists()
    assert list(MemoryHistory.objects.filter(memory_id=held[0].id).values_list("event", "new_memory")) == [
        ("UPDATE", "alice contract v2")
    ]
    assert [e.event for e in memory_history(memory_id=held[0].id)] == ["ADD", "UPDATE"]
    assert list(MemoryHistory.objects.filter(memory_id=other[0].id).values_list("event", "new_memory")) == [
        ("UPDATE", "bob fact 2")
    ]
    assert not MemoryHistory.objects.filter(new_memory__contains="alice fact").exists()
    assert not MemoryHistory.objects.filter(old_memory__contains="alice fact").exists()
    assert job.scope is None and job.scope_pseudonymised["user_id"] != ["alice"]
    assert job.status == DeletionJob.Status.SUCCEEDED


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


def test_delete_events_are_findable_before_and_after_the_beat_indexes_them(db):
    # given: batches write their DELETE events (tombstones) unindexed; the beat task adds them to a partial GIN
    # index whose pending list is 64 MB, then merges that list
    from django.db import connection

    from memories.engine import memories_tombstones_merge
    from memories.models import MemoryTombstone

    with connection.cursor() as cur:
        cur.execute("SELECT reloptions FROM pg_class WHERE relname = 'tombstone_ids_gin'")
        (options,) = cur.fetchone()
    assert "fastupdate=on" in options and "gin_pending_list_limit=65536" in options
    mine = memories_add(texts=["gone 1", "gone 2", "gone 3"], user_id="carol")
    job = deletion_job_create(kind="filter", scope={"user_id": "carol"}, requested_by="test", enqueue=False)
    deletion_job_run(job_id=job.id, batch_size=2, budget_seconds=60)
    assert list(MemoryTombstone.objects.filter(job=job).values_list("indexed", flat=True)) == [False, False]

    def events_are_content_free_deletes() -> None:
        for memory in mine:
            [event] = memory_history(memory_id=memory.id)
            assert event.event == "DELETE" and event.old_memory is None and event.new_memory is None
        assert memory_history(memory_id=uuid.uuid4()) is None

    # then: before the beat task, each deleted memory has its content-free DELETE event (read unindexed)
    events_are_content_free_deletes()

    # when: the beat task indexes them (in transactions of `limit` rows) and merges the pending list
    assert memories_tombstones_merge(limit=1) == 2
    assert memories_tombstones_merge() == 0

    # then: the same events, now through the index
    assert not MemoryTombstone.objects.filter(job=job, indexed=False).exists()
    events_are_content_free_deletes()


def test_a_batch_reads_its_ids_as_bytes_from_the_binary_uuid_array(db):
    import psycopg
    from django.db import connection

    from memories.engine.batch import UUID_ARRAY_OID, IdsBytesLoader

    ids = sorted(uuid.uuid4() for _ in range(1000))
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cur:
        cur.adapters.register_loader(UUID_ARRAY_OID, IdsBytesLoader)
        cur.execute("SELECT %s::uuid[], '{}'::uuid[], NULL::uuid[]", [ids], binary=True)
        assert cur.fetchone() == (b"".join(u.bytes for u in ids), b"", None)
        # what it cannot read as 16-byte values is refused, never guessed
        for sql in ["SELECT ARRAY[NULL::uuid, gen_random_uuid()]", "SELECT ARRAY[[gen_random_uuid()]]"]:
            with pytest.raises(ValueError):
                cur.execute(sql, binary=True)
                cur.fetchone()
