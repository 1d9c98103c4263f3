"""The engine's Celery task in real worker processes: a SIGKILLed worker, a killed database connection, retries
running out, zero time budgets, and the expiry beat task."""

import pytest
from django.db import connection, transaction

from memories.engine import chain_digest, deletion_job_create, deletion_job_retry
from memories.models import DeletionJob, LegalHold, Memory, MemoryHistory
from memories.services import memories_add
from memories.tasks import memories_purge_expired_task
from tests.conftest import wait_for

pytestmark = pytest.mark.worker


def _bulk_load(user_id: str, n: int, *, held: int = 0) -> list:
    """n memories with one ADD history row each, in two statements; the first `held` are under a legal hold.
    Returns the sorted ids of the deletable ones."""
    hold = LegalHold.objects.create(reason="art17_3_e", placed_by="test") if held else None
    with connection.cursor() as cur:
        cur.execute(
            """INSERT INTO memories_memory (id, text, hash, user_id, metadata, categories, immutable,
                                            legal_hold_id, created_at, updated_at)
               SELECT gen_random_uuid(), 'fact number ' || g, md5(g::text), %s, '{"src": "bulk"}', '{}', false,
                      CASE WHEN g <= %s THEN %s::uuid END, now(), now()
               FROM generate_series(1, %s) AS g""",
            [user_id, held, hold.id if hold else None, n],
        )
        cur.execute(
            """INSERT INTO memories_history (id, memory_id, event, new_memory, categories, created_at)
               SELECT gen_random_uuid(), id, 'ADD', text, '{}', now() FROM memories_memory WHERE user_id = %s""",
            [user_id],
        )
    return sorted(
        Memory.objects.filter(user_id=user_id, legal_hold__isnull=True).values_list("id", flat=True)
    )


def _start_job(user_id: str) -> DeletionJob:
    with transaction.atomic():
        return deletion_job_create(kind="erasure", scope={"user_id": user_id}, requested_by="test")


def _assert_exact(job: DeletionJob, ids: list, *, held: int = 0) -> None:
    job.refresh_from_db()
    assert job.status == "SUCCEEDED", (job.status, job.error)
    assert job.deleted_count == len(ids) and job.held_count == held
    assert job.history_purged_count == len(ids)
    assert job.digest == chain_digest("0" * 64, ids)
    assert Memory.objects.filter(id__in=ids).count() == 0
    events = MemoryHistory.objects.filter(memory_id__in=ids)
    assert events.filter(event="DELETE").count() == len(ids) == events.count()
    assert events.values("memory_id").distinct().count() == len(ids)  # no duplicate DELETE events


def test_a_sigkilled_worker_job_is_resumed_by_the_sweeper_with_exact_counts(start_worker):
    # given: a large store and a worker deleting it in small batches
    total, held = 100_000, 7
    ids = _bulk_load("bulk-user", total + held, held=held)
    assert len(ids) == total
    first = start_worker("crash1", extra_env={"DELETION_BATCH_SIZE": "500"})
    job = _start_job("bulk-user")

    # when: the worker's whole process group is SIGKILLed mid-job
    wait_for(lambda: DeletionJob.objects.get(id=job.id).deleted_count >= 5_000, timeout=60, interval=0.05)
    first.kill()
    job.refresh_from_db()
    assert 0 < job.deleted_count < total, "the kill must land in the middle of the job"
    assert job.status == "RUNNING"

    # then: a new worker with beat finds the orphan (stale heartbeat) and finishes it exactly
    start_worker(
        "crash2",
        extra_env={
            "DELETION_BATCH_SIZE": "500",
            "DELETION_STALE_SECONDS": "2",
            "DELETION_SWEEP_SECONDS": "1",
        },
        beat=True,
    )
    wait_for(lambda: DeletionJob.objects.get(id=job.id).is_finished, timeout=90, message="resumed job")
    _assert_exact(job, ids, held=held)
    assert Memory.objects.filter(user_id="bulk-user").count() == held


def _kill_worker_connections() -> int:
    with connection.cursor() as cur:
        cur.execute(
            """SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
               WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = 'erasure'"""
        )
        return cur.fetchone()[0]


def test_a_killed_database_connection_is_retried_then_failure_and_retry_resume_exactly(start_worker):
    # given: a worker that retries database errors
    ids = _bulk_load("retry-user", 20_000)
    worker = start_worker("retry", extra_env={"DELETION_BATCH_SIZE": "100"})
    job = _start_job("retry-user")
    wait_for(lambda: DeletionJob.objects.get(id=job.id).deleted_count > 0, timeout=60, interval=0.02)

    # when: its database connection is terminated mid-job
    assert _kill_worker_connections() >= 1

    # then: the task retries and the job ends with exact counts
    wait_for(lambda: DeletionJob.objects.get(id=job.id).is_finished, timeout=90, message="retried job")
    _assert_exact(job, ids)
    assert "Retry in" in worker.log()
    worker.stop()

    # given: a worker with no retries left
    ids = _bulk_load("fail-user", 20_000)
    start_worker("noretry", extra_env={"DELETION_BATCH_SIZE": "100", "DELETION_TASK_MAX_RETRIES": "0"})
    job = _start_job("fail-user")
    wait_for(lambda: DeletionJob.objects.get(id=job.id).deleted_count > 0, timeout=60, interval=0.02)
    assert _kill_worker_connections() >= 1

    # then: the job is FAILED with a class name, keeping its progress; retry resumes it to the exact end
    wait_for(lambda: DeletionJob.objects.get(id=job.id).is_finished, timeout=60, message="failed job")
    job.refresh_from_db()
    assert job.status == "FAILED" and job.error in {"OperationalError", "InterfaceError"}
    assert 0 < job.deleted_count < 20_000
    with transaction.atomic():
        deletion_job_retry(job_id=job.id)
    wait_for(lambda: DeletionJob.objects.get(id=job.id).is_finished, timeout=90, message="resumed job")
    _assert_exact(job, ids)


def test_zero_budget_and_tiny_batches_reenqueue_many_times_with_exact_counts(start_worker):
    mine = memories_add(texts=[f"fact {i}" for i in range(60)], user_id="olga")
    start_worker("zero", extra_env={"DELETION_BATCH_SIZE": "7", "DELETION_TASK_BUDGET_SECONDS": "0"})
    job = _start_job("olga")

    wait_for(lambda: DeletionJob.objects.get(id=job.id).is_finished, timeout=60, message="job")
    _assert_exact(job, sorted(m.id for m in mine))
    job.refresh_from_db()
    assert job.batches == 9 and job.attempts >= 9  # one task (one ticket) per batch


def test_expiry_beat_task_deletes_only_expired_memories_through_the_engine(celery_worker):
    import datetime

    from django.utils import timezone

    today = timezone.localdate()
    expired = memories_add(
        texts=["old"] * 3, user_id="pia", expiration_date=today - datetime.timedelta(days=2)
    )
    kept = memories_add(texts=["today"], user_id="pia", expiration_date=today)
    kept += memories_add(texts=["plain"], user_id="pia")

    memories_purge_expired_task.delay()

    wait_for(
        lambda: DeletionJob.objects.filter(kind="expiry", status="SUCCEEDED").exists(),
        timeout=60,
        message="expiry",
    )
    job = DeletionJob.objects.get(kind="expiry")
    _assert_exact(job, sorted(m.id for m in expired))
    assert Memory.objects.filter(id__in=[m.id for m in kept]).count() == 2
