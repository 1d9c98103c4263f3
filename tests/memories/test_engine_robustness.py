"""The deletion engine on real PostgreSQL, without a worker: history purge, legal holds (also one placed while a
batch waits on a row lock), exact counts and digest with tiny batches, the final pass, dispatch tickets, the
stale-job sweeper and the expiry sweep."""

import datetime
import threading
import time
import uuid

import pytest
from django.core.cache import cache
from django.db import connection, connections, transaction
from django.utils import timezone

from memories.engine import (
    chain_digest,
    deletion_job_create,
    deletion_job_run,
    deletion_jobs_resume_stale,
    memories_purge_expired,
)
from memories.models import DeletionJob, LegalHold, Memory, MemoryHistory
from memories.services import legal_hold_place, memories_add, memory_update


def _new_job(scope):
    return deletion_job_create(kind="filter", scope=scope, requested_by="test", enqueue=False)


def _run_to_end(job, *, batch_size, budget=0.0, limit=10_000):
    for _ in range(limit):
        if deletion_job_run(job_id=job.id, batch_size=batch_size, budget_seconds=budget).finished:
            job.refresh_from_db()
            return job
    raise AssertionError("job did not finish")


def test_history_purge_leaves_exactly_one_content_free_delete_event_per_memory(db):
    # given: memories with ADD and UPDATE history holding text
    mine = memories_add(texts=[f"secret {i}" for i in range(12)], user_id="erin")
    for memory in mine[:5]:
        memory_update(memory=memory, text=f"changed secret {memory.id}")
    kept = memories_add(texts=["not erin"], user_id="frank")

    # when
    job = _run_to_end(_new_job({"user_id": "erin"}), batch_size=4)

    # then
    ids = [m.id for m in mine]
    events = MemoryHistory.objects.filter(memory_id__in=ids)
    assert events.count() == 12 and set(events.values_list("event", flat=True)) == {"DELETE"}
    assert not events.filter(old_memory__isnull=False).exists()
    assert not events.filter(new_memory__isnull=False).exists()
    assert not MemoryHistory.objects.filter(new_memory__contains="secret").exists()
    assert not MemoryHistory.objects.filter(old_memory__contains="secret").exists()
    assert job.history_purged_count == 12 + 5
    assert MemoryHistory.objects.filter(memory_id=kept[0].id, event="ADD").exists()


def test_zero_budget_tiny_batches_give_exact_counts_and_the_digest_of_sorted_ids(db):
    mine = memories_add(texts=[f"g{i}" for i in range(53)], user_id="gina")
    job = _run_to_end(_new_job({"user_id": "gina"}), batch_size=3, budget=0)
    assert job.status == "SUCCEEDED" and job.deleted_count == 53 and job.batches == 18
    assert job.digest == chain_digest("0" * 64, sorted(m.id for m in mine))
    assert MemoryHistory.objects.filter(memory_id__in=[m.id for m in mine], event="DELETE").count() == 53


def test_hold_placed_between_batches_is_honoured_and_counted(db):
    memories_add(texts=[f"h{i}" for i in range(20)], user_id="hank", agent_id="chat")
    memories_add(texts=[f"case {i}" for i in range(4)], user_id="hank", agent_id="legal")
    job = _new_job({"user_id": "hank"})
    assert not deletion_job_run(job_id=job.id, batch_size=5, budget_seconds=0).finished

    legal_hold_place(
        scope={"user_id": "hank", "agent_id": "legal"}, reason="art17_3_e", note="", placed_by="t"
    )

    job = _run_to_end(job, batch_size=5)
    remaining = Memory.objects.filter(user_id="hank")
    # a held row may already have gone in the first batch (ids are random); every other one stays and is counted
    assert job.held_count == remaining.count() == remaining.filter(agent_id="legal").count()
    assert job.deleted_count + job.held_count == 24
    assert not remaining.filter(legal_hold__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_hold_committed_while_the_batch_waits_on_the_row_is_honoured():
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
    assert not MemoryHistory.objects.filter(memory_id=target.id, event="DELETE").exists()


def test_rows_written_behind_the_cursor_are_caught_by_the_final_pass(db):
    first = memories_add(texts=[f"j{i}" for i in range(30)], user_id="jack")
    job = _new_job({"user_id": "jack"})
    deletion_job_run(job_id=job.id, batch_size=10, budget_seconds=0)
    job.refresh_from_db()
    pass_one = sorted(m.id for m in first if m.id <= job.cursor)
    assert len(pass_one) == 10

    # a memory written behind the cursor (its id sorts before it) while the job runs
    behind = uuid.UUID(int=0x1)
    Memory.objects.create(id=behind, text="late", hash="x", user_id="jack")

    job = _run_to_end(job, batch_size=10, budget=60)
    assert job.deleted_count == 31 and not Memory.objects.filter(user_id="jack").exists()
    assert job.passes >= 1
    rest = sorted(m.id for m in first if m.id > pass_one[-1])
    # the digest folds ids in deletion order: pass one ascending, then the catch-up pass ascending
    assert job.digest == chain_digest(chain_digest("0" * 64, pass_one + rest), [behind])


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
    gone = memories_add(texts=["old"], user_id="ned", expiration_date=today - datetime.timedelta(days=1))
    stays = memories_add(texts=["today"], user_id="ned", expiration_date=today)
    later = memories_add(texts=["later"], user_id="ned", expiration_date=today + datetime.timedelta(days=3))
    forever = memories_add(texts=["forever"], user_id="ned")

    job = memories_purge_expired(today=today)
    assert job is not None and job.kind == "expiry"
    assert memories_purge_expired(today=today) is None  # one open expiry job at a time
    job = _run_to_end(job, batch_size=100, budget=60)

    assert job.deleted_count == 1 and not Memory.objects.filter(id=gone[0].id).exists()
    assert Memory.objects.filter(id__in=[stays[0].id, later[0].id, forever[0].id]).count() == 3
    assert MemoryHistory.objects.filter(memory_id=gone[0].id).get().event == "DELETE"
    assert connection.vendor == "postgresql"
