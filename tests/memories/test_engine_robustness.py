"""The deletion engine on real PostgreSQL, without a worker: history purge, legal holds (also one placed while a
batch waits on a row lock, and more held rows than a batch holds), exact counts and digest with tiny batches, the
straggler pass, dispatch tickets, the stale-job sweeper and the expiry sweep."""

import datetime
import threading
import time
import uuid

import pytest
from django.core.cache import cache
from django.db import connection, connections, transaction
from django.utils import timezone

from memories.engine import (
    deletion_job_create,
    deletion_job_run,
    deletion_jobs_resume_stale,
    memories_purge_expired,
)
from memories.engine.run import straggler_cursor
from memories.ids import uuid7
from memories.models import DeletionJob, LegalHold, Memory, MemoryHistory, MemoryTombstone
from memories.selectors import memory_history
from memories.services import legal_hold_place, memories_add, memory_update
from tests.memories.deletion_checks import assert_deleted_exactly, history_rows


def _new_job(scope):
    return deletion_job_create(kind="filter", scope=scope, requested_by="test", enqueue=False)


def _run_to_end(job, *, batch_size, budget=0.0, limit=10_000):
    for _ in range(limit):
        if deletion_job_run(job_id=job.id, batch_size=batch_size, budget_seconds=budget).finished:
            job.refresh_from_db()
            return job
    raise AssertionError("job did not finish")


def test_history_purge_leaves_no_history_row_and_one_content_free_delete_event_per_memory(db):
    # given: 12 memories of erin: 5 updated (2 of them twice: 7 UPDATE rows holding text), one with a legacy ADD
    # row, the rest without any history row; frank's memory, updated too
    mine = memories_add(texts=[f"secret {i}" for i in range(12)], user_id="erin")
    for memory in mine[:5]:
        memory_update(memory=memory, text=f"changed secret {memory.id}")
    for memory in mine[3:5]:
        memory_update(memory=memory, text=f"changed secret again {memory.id}")
    MemoryHistory.objects.create(memory_id=mine[7].id, event="ADD", new_memory="secret 7")
    kept = memories_add(texts=["not erin"], user_id="frank")
    memory_update(memory=kept[0], text="still not erin")
    assert history_rows(m.id for m in mine) == 7 + 1

    # when
    job = _run_to_end(_new_job({"user_id": "erin"}), batch_size=4)

    # then
    ids = [m.id for m in mine]
    tombstones = assert_deleted_exactly(job, ids, history_purged=7 + 1)
    assert [len(t.ids) for t in tombstones] == [4, 4, 4]
    assert not MemoryHistory.objects.filter(new_memory__contains="secret").exists()
    assert not MemoryHistory.objects.filter(old_memory__contains="secret").exists()
    assert [(e.event, e.old_memory, e.new_memory) for e in memory_history(memory_id=kept[0].id)] == [
        ("ADD", None, "not erin"),
        ("UPDATE", "not erin", "still not erin"),
    ]


def test_zero_budget_tiny_batches_give_exact_counts_and_the_digest_of_sorted_ids(db):
    mine = memories_add(texts=[f"g{i}" for i in range(53)], user_id="gina")
    for memory in mine[::4]:  # 14 memories with one UPDATE row each, 39 without history
        memory_update(memory=memory, text=f"g changed {memory.id}")
    job = _run_to_end(_new_job({"user_id": "gina"}), batch_size=3, budget=0)
    assert job.batches == 18
    tombstones = assert_deleted_exactly(job, [m.id for m in mine], history_purged=14)
    assert [len(t.ids) for t in tombstones] == [3] * 17 + [2]
    # batches are consecutive ranges of the sorted ids
    assert [i for t in tombstones for i in t.ids] == sorted(m.id for m in mine)


def test_hold_placed_between_batches_is_honoured_and_counted(db):
    # the legal rows have the highest ids, so the first batch (the 5 lowest) holds none of them
    ids = sorted(uuid7() for _ in range(24))
    chat = [
        Memory.objects.create(id=i, text="h", hash="x", user_id="hank", agent_id="chat") for i in ids[:20]
    ]
    for memory_id in ids[20:]:
        Memory.objects.create(id=memory_id, text="case", hash="x", user_id="hank", agent_id="legal")
    job = _new_job({"user_id": "hank"})
    assert not deletion_job_run(job_id=job.id, batch_size=5, budget_seconds=0).finished

    legal_hold_place(
        scope={"user_id": "hank", "agent_id": "legal"}, reason="art17_3_e", note="", placed_by="t"
    )

    job = _run_to_end(job, batch_size=5)
    remaining = Memory.objects.filter(user_id="hank")
    assert job.held_count == remaining.count() == remaining.filter(agent_id="legal").count() == 4
    assert not remaining.filter(legal_hold__isnull=True).exists()
    assert_deleted_exactly(job, [m.id for m in chat], history_purged=0, held=4)


@pytest.mark.parametrize(
    "make_id",
    [
        pytest.param(uuid7, id="written-now"),
        # random ids as earlier versions wrote them: (all but a few) above any straggler cursor of today
        pytest.param(lambda: uuid.UUID("f" + str(uuid.uuid4())[1:]), id="legacy-v4-ids"),
    ],
)
def test_more_held_rows_than_a_batch_holds_are_skipped_and_the_job_finishes(db, make_id):
    # given: 5 held memories and 7 deletable ones (one with an UPDATE row), all with ids in the straggler pass's
    # range too, deleted in batches of 2
    held = [Memory.objects.create(id=make_id(), text="case", hash="x", user_id="olaf") for _ in range(5)]
    free = [Memory.objects.create(id=make_id(), text="o", hash="x", user_id="olaf") for _ in range(7)]
    memory_update(memory=free[0], text="o changed")
    legal_hold_place(
        scope={"memory_ids": [str(m.id) for m in held]}, reason="art17_3_e", note="", placed_by="t"
    )

    # when
    job = _run_to_end(_new_job({"user_id": "olaf"}), batch_size=2, limit=200)

    # then
    assert_deleted_exactly(job, [m.id for m in free], history_purged=1, held=5)
    assert set(Memory.objects.filter(user_id="olaf").values_list("id", flat=True)) == {m.id for m in held}


@pytest.mark.django_db(transaction=True)
def test_hold_committed_while_the_batch_waits_on_the_row_is_honoured(caplog):
    # given: a hold being placed on one row in another transaction, not yet committed
    rows = memories_add(texts=[f"i{i}" for i in range(10)], user_id="ivy")
    target = rows[4]
    hold = LegalHold.objects.create(reason="art17_3_b", placed_by="t")
    placed = threading.Event()
    release = threading.Event()

    def place_hold():
        with transaction.atomic():
            Memory.objects.filter(id=target.id).update(legal_hold=hold)
            placed.set()
            release.wait(10)
        connections.close_all()

    holder = threading.Thread(target=place_hold)
    holder.start()
    placed.wait(10)
    job = _new_job({"user_id": "ivy"})
    result: dict = {}
    runner = threading.Thread(
        target=lambda: (
            result.update(r=deletion_job_run(job_id=job.id, batch_size=100, budget_seconds=60)),
            connections.close_all(),
        )
    )

    # when: the batch blocks on the locked row, then the hold commits
    runner.start()
    time.sleep(0.5)
    assert runner.is_alive(), "the batch should be waiting on the row lock"
    release.set()
    holder.join(10)
    runner.join(30)

    # then
    job.refresh_from_db()
    assert job.status == "SUCCEEDED" and job.deleted_count == 9 and job.held_count == 1
    assert list(Memory.objects.filter(user_id="ivy").values_list("id", flat=True)) == [target.id]
    # the held memory has no DELETE event anywhere: its history is still its ADD event, with its text
    assert not MemoryTombstone.objects.filter(ids__contains=[target.id]).exists()
    assert [(e.event, e.new_memory) for e in memory_history(memory_id=target.id)] == [("ADD", "i4")]
    assert_deleted_exactly(job, [m.id for m in rows if m.id != target.id], history_purged=0, held=1)
    assert (
        "redone by the careful statement" in caplog.text
    )  # one row fewer than selected: the batch was redone


def test_rows_written_behind_the_cursor_are_caught_by_the_straggler_pass(db):
    # given: 31 time-ordered ids, one of which (in the first batch's range) is only written once the first batch
    # has moved the cursor past it, as a memory added while the job runs can be (uuid7 ids of one millisecond are
    # in random order)
    ids = sorted(uuid7() for _ in range(31))
    behind = ids[4]
    for n, memory_id in enumerate(ids):
        if memory_id != behind:
            Memory.objects.create(id=memory_id, text=f"j{n}", hash="x", user_id="jack")
    memory_update(memory=Memory.objects.get(id=ids[20]), text="j20 changed")
    job = _new_job({"user_id": "jack"})
    deletion_job_run(job_id=job.id, batch_size=10, budget_seconds=0)
    job.refresh_from_db()
    pass_one = [i for i in ids if i != behind][:10]
    assert job.cursor == pass_one[-1] and job.deleted_count == 10 and job.passes == 0
    assert behind < job.cursor and behind > straggler_cursor(job)

    # when: the memory is written behind the cursor (with an UPDATE) while the job runs, and the job goes on
    late = Memory.objects.create(id=behind, text="late", hash="x", user_id="jack")
    memory_update(memory=late, text="late secret")
    job = _run_to_end(job, batch_size=10, budget=60)

    # then: pass one went to the end of the scope, the straggler pass caught the late row, and a last straggler
    # pass found nothing
    assert job.passes == 2 and job.cursor == straggler_cursor(job)
    tombstones = assert_deleted_exactly(job, ids, history_purged=2)
    assert [t.ids for t in tombstones] == [pass_one, ids[11:21], ids[21:31], [behind]]
    assert not Memory.objects.filter(user_id="jack").exists()
    assert not MemoryHistory.objects.filter(new_memory__contains="late").exists()


def test_a_superseded_or_duplicate_ticket_does_not_run(db):
    memories_add(texts=[f"k{i}" for i in range(10)], user_id="kim")
    with transaction.atomic():
        job = deletion_job_create(kind="filter", scope={"user_id": "kim"}, requested_by="test")
    job.refresh_from_db()
    ticket = job.attempts
    assert ticket == 1

    first = deletion_job_run(job_id=job.id, ticket=ticket, batch_size=2, budget_seconds=0)
    duplicate = deletion_job_run(job_id=job.id, ticket=ticket, batch_size=2, budget_seconds=0)
    stale = deletion_job_run(job_id=job.id, ticket=0, batch_size=2, budget_seconds=0)

    job.refresh_from_db()
    assert first.ran and not duplicate.ran and not stale.ran
    assert job.attempts == ticket + 1  # only the first run dispatched a continuation
    assert job.deleted_count == 2 and job.batches == 1
    nxt = deletion_job_run(job_id=job.id, ticket=job.attempts, batch_size=100, budget_seconds=60)
    assert nxt.ran and nxt.finished and nxt.job.deleted_count == 10


def test_a_ticket_already_held_by_a_running_worker_leaves(db):
    memories_add(texts=["l"], user_id="lea")
    job = _new_job({"user_id": "lea"})
    key = int.from_bytes(job.id.bytes[:8], "big", signed=True)
    other = connections.create_connection("default")
    try:
        with other.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", [key])
        result = deletion_job_run(job_id=job.id, budget_seconds=60)
    finally:
        other.close()
    assert not result.ran and Memory.objects.filter(user_id="lea").count() == 1


def test_sweeper_resends_a_stale_job_once_then_backs_off(db):
    memories_add(texts=["m"], user_id="mia")
    job = _new_job({"user_id": "mia"})
    fresh = _new_job({"user_id": "mia", "agent_id": "x"})
    old = timezone.now() - datetime.timedelta(seconds=120)
    DeletionJob.objects.filter(id=job.id).update(status="RUNNING", heartbeat_at=old)
    cache.delete(f"deletion-sweep:{job.id}")

    assert deletion_jobs_resume_stale(stale_seconds=60) == 1
    # a second sweep right after: the heartbeat was touched, nothing is re-sent
    assert deletion_jobs_resume_stale(stale_seconds=60) == 0
    # still no progress after one stale period: the next re-send waits twice as long
    DeletionJob.objects.filter(id=job.id).update(heartbeat_at=timezone.now() - datetime.timedelta(seconds=90))
    cache.set(f"deletion-sweep:{job.id}", (1, DeletionJob.objects.get(id=job.id).heartbeat_at.isoformat()))
    assert deletion_jobs_resume_stale(stale_seconds=60) == 0
    DeletionJob.objects.filter(id=job.id).update(
        heartbeat_at=timezone.now() - datetime.timedelta(seconds=130)
    )
    cache.set(f"deletion-sweep:{job.id}", (1, DeletionJob.objects.get(id=job.id).heartbeat_at.isoformat()))
    assert deletion_jobs_resume_stale(stale_seconds=60) == 1
    assert DeletionJob.objects.get(id=fresh.id).heartbeat_at is None


def test_expiry_sweep_deletes_only_memories_expired_before_today(db):
    today = datetime.date(2030, 6, 15)
    gone = memories_add(
        texts=["old", "old too"], user_id="ned", expiration_date=today - datetime.timedelta(days=1)
    )
    memory_update(memory=gone[1], text="old too, changed")
    stays = memories_add(texts=["today"], user_id="ned", expiration_date=today)
    memory_update(memory=stays[0], text="today, changed")
    later = memories_add(texts=["later"], user_id="ned", expiration_date=today + datetime.timedelta(days=3))
    forever = memories_add(texts=["forever"], user_id="ned")

    job = memories_purge_expired(today=today)
    assert job is not None and job.kind == "expiry"
    assert memories_purge_expired(today=today) is None  # one open expiry job at a time
    job = _run_to_end(job, batch_size=100, budget=60)

    assert_deleted_exactly(job, [m.id for m in gone], history_purged=1)
    assert Memory.objects.filter(id__in=[stays[0].id, later[0].id, forever[0].id]).count() == 3
    assert [e.event for e in memory_history(memory_id=stays[0].id)] == ["ADD", "UPDATE"]
    assert MemoryHistory.objects.filter(memory_id=stays[0].id, new_memory="today, changed").exists()
    assert connection.vendor == "postgresql"


def test_a_message_for_a_job_that_does_not_exist_is_dropped_with_a_warning(transactional_db, caplog):
    # given: a task message outliving its database (a test's flushed tables, a restored backup)
    from memories.tasks import deletion_job_run_task

    missing = str(uuid.uuid4())
    # when
    result = deletion_job_run_task.apply(args=[missing])
    # then: no failure, no traceback, no job created; one warning naming the job id only
    assert result.successful(), result.traceback
    assert not DeletionJob.objects.exists()
    dropped = [r for r in caplog.records if r.getMessage() == "deletion job not found: message dropped"]
    assert len(dropped) == 1 and dropped[0].job == missing and dropped[0].exc_info is None
