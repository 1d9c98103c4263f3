"""The engine's Celery task in real worker processes: a SIGKILLed worker, a killed database connection, retries
running out, zero time budgets, and the expiry beat task."""

import uuid

import pytest
from django.db import connection, transaction

from memories.engine import deletion_job_create, deletion_job_retry
from memories.ids import uuid7
from memories.models import DeletionJob, LegalHold, Memory
from memories.selectors import deletion_job_get
from memories.services import memories_add, memory_update
from memories.tasks import memories_purge_expired_task
from tests.conftest import wait_for
from tests.memories.deletion_checks import assert_deleted_exactly, history_rows

pytestmark = pytest.mark.worker


def _bulk_load(user_id: str, n: int, *, held: int = 0, legacy: bool = False) -> tuple[list, int]:
    """n memories in a few statements; the first `held` are under a legal hold. Every 4th memory has an UPDATE
    history row, every 12th a second one. With `legacy`, the store as earlier versions left it: random (v4) ids
    and an ADD history row for every memory; otherwise UUIDv7 ids and no other history row (most memories have
    none). Returns the sorted ids of the deletable memories and how many history rows they have, all of which
    the engine must purge."""
    hold = LegalHold.objects.create(reason="art17_3_e", placed_by="test") if held else None
    ids = [uuid.uuid4() if legacy else uuid7() for _ in range(n)]
    with connection.cursor() as cur:
        cur.execute(
            """INSERT INTO memories_memory (id, text, hash, user_id, metadata, categories, immutable,
                                            legal_hold_id, has_history, created_at, updated_at)
               SELECT m.id, 'fact number ' || m.g, md5(m.g::text), %s, '{"src": "bulk"}', '{}', false,
                      CASE WHEN m.g <= %s THEN %s::uuid END, false, now(), now()
               FROM unnest(%s::uuid[]) WITH ORDINALITY AS m(id, g)""",
            [user_id, held, hold.id if hold else None, ids],
        )
        # history rows by plain INSERTs: the table's trigger sets has_history, whoever writes them
        if legacy:
            cur.execute(
                """INSERT INTO memories_history (id, memory_id, event, new_memory, categories, created_at)
                   SELECT gen_random_uuid(), id, 'ADD', text, '{}', now() FROM memories_memory
                   WHERE user_id = %s""",
                [user_id],
            )
        cur.execute(
            """INSERT INTO memories_history (id, memory_id, event, old_memory, new_memory, categories, created_at)
               SELECT gen_random_uuid(), m.id, 'UPDATE', 'fact number ' || m.g || ' v' || k,
                      'fact number ' || m.g || ' v' || (k + 1), '{}', now()
               FROM unnest(%s::uuid[]) WITH ORDINALITY AS m(id, g), generate_series(1, 2) AS k
               WHERE m.g %% 4 = 0 AND (k = 1 OR m.g %% 12 = 0)""",
            [ids],
        )
    deletable = sorted(
        Memory.objects.filter(user_id=user_id, legal_hold__isnull=True).values_list("id", flat=True)
    )
    purge = sum(legacy + (g % 4 == 0) + (g % 12 == 0) for g in range(held + 1, n + 1))
    assert history_rows(deletable) == purge
    assert Memory.objects.filter(id__in=deletable, has_history=True).count() == (
        len(deletable) if legacy else sum(g % 4 == 0 for g in range(held + 1, n + 1))
    )
    return deletable, purge


def _start_job(user_id: str) -> DeletionJob:
    with transaction.atomic():
        return deletion_job_create(kind="erasure", scope={"user_id": user_id}, requested_by="test")


def test_a_sigkilled_worker_job_is_resumed_by_the_sweeper_with_exact_counts(start_worker):
    # given: a large store and a worker deleting it in small batches
    total, held = 100_000, 7
    ids, purge = _bulk_load("bulk-user", total + held, held=held)
    assert len(ids) == total
    held_ids = list(
        Memory.objects.filter(user_id="bulk-user", legal_hold__isnull=False).values_list("id", flat=True)
    )
    assert history_rows(held_ids) == 1  # the 4th memory's UPDATE row
    first = start_worker("crash1", extra_env={"DELETION_BATCH_SIZE": "500"})
    job = _start_job("bulk-user")

    # when: the worker's whole process group is SIGKILLed mid-job
    wait_for(lambda: deletion_job_get(job_id=job.id).deleted_count >= 5_000, timeout=60, interval=0.05)
    first.kill()
    job = deletion_job_get(job_id=job.id)
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
    assert_deleted_exactly(job, ids, history_purged=purge, held=held, events_sample=200)
    assert set(Memory.objects.filter(user_id="bulk-user").values_list("id", flat=True)) == set(held_ids)
    assert history_rows(held_ids) == 1  # the held memories keep their history


def _kill_worker_connections() -> int:
    with connection.cursor() as cur:
        cur.execute(
            """SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
               WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = 'erasure'"""
        )
        return cur.fetchone()[0]


def test_a_killed_database_connection_is_retried_then_failure_and_retry_resume_exactly(start_worker):
    # given: a worker that retries database errors, and a store as earlier versions left it
    ids, purge = _bulk_load("retry-user", 20_000, legacy=True)
    worker = start_worker("retry", extra_env={"DELETION_BATCH_SIZE": "100"})
    job = _start_job("retry-user")
    wait_for(lambda: deletion_job_get(job_id=job.id).deleted_count > 0, timeout=60, interval=0.02)

    # when: its database connection is terminated mid-job
    assert _kill_worker_connections() >= 1

    # then: the task retries and the job ends with exact counts
    wait_for(lambda: DeletionJob.objects.get(id=job.id).is_finished, timeout=90, message="retried job")
    assert_deleted_exactly(job, ids, history_purged=purge, events_sample=200)
    assert "Retry in" in worker.log()
    worker.stop()

    # given: a worker with no retries left
    ids, purge = _bulk_load("fail-user", 20_000)
    start_worker("noretry", extra_env={"DELETION_BATCH_SIZE": "100", "DELETION_TASK_MAX_RETRIES": "0"})
    job = _start_job("fail-user")
    wait_for(lambda: deletion_job_get(job_id=job.id).deleted_count > 0, timeout=60, interval=0.02)
    assert _kill_worker_connections() >= 1

    # then: the job is FAILED with a class name, keeping its progress; retry resumes it to the exact end
    wait_for(lambda: DeletionJob.objects.get(id=job.id).is_finished, timeout=60, message="failed job")
    job = deletion_job_get(job_id=job.id)
    assert job.status == "FAILED" and job.error in {"OperationalError", "InterfaceError"}
    assert 0 < job.deleted_count < 20_000
    with transaction.atomic():
        deletion_job_retry(job_id=job.id)
    wait_for(lambda: DeletionJob.objects.get(id=job.id).is_finished, timeout=90, message="resumed job")
    assert_deleted_exactly(job, ids, history_purged=purge, events_sample=200)


def _worker_backends() -> set[int]:
    with connection.cursor() as cur:
        cur.execute(
            """SELECT pid FROM pg_stat_activity
               WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = 'erasure'"""
        )
        return {row[0] for row in cur.fetchall()}


def test_the_worker_keeps_its_database_connection_from_task_to_task(start_worker):
    # given: a worker whose connections may live 60 s (the test settings otherwise close them after every task,
    # as Celery's Django fixup would do whatever CONN_MAX_AGE said)
    memories_add(texts=["one", "two"], user_id="first")
    memories_add(texts=["three"], user_id="second")
    start_worker("reuse", extra_env={"DATABASE_CONN_MAX_AGE": "60"})

    # when: two jobs run one after the other
    first = _start_job("first")
    wait_for(lambda: DeletionJob.objects.get(id=first.id).is_finished, timeout=60, message="first job")
    backends = wait_for(_worker_backends, timeout=10, message="the worker's connection after its task")
    second = _start_job("second")
    wait_for(lambda: DeletionJob.objects.get(id=second.id).is_finished, timeout=60, message="second job")

    # then: the second task ran on the connection the first one opened, and both jobs are done
    assert len(backends) == 1
    assert _worker_backends() == backends
    assert DeletionJob.objects.get(id=second.id).deleted_count == 1
    assert not Memory.objects.filter(user_id__in=["first", "second"]).exists()


def test_zero_budget_and_tiny_batches_reenqueue_many_times_with_exact_counts(start_worker):
    mine = memories_add(texts=[f"fact {i}" for i in range(60)], user_id="olga")
    for memory in mine[::5]:  # 12 memories with an UPDATE row, one of them with two
        memory_update(memory=memory, text=f"fact changed {memory.id}")
    memory_update(memory=mine[0], text="fact changed twice")
    # one lane: this is about the chain of continuations (lanes have their own test)
    start_worker(
        "zero",
        extra_env={"DELETION_BATCH_SIZE": "7", "DELETION_TASK_BUDGET_SECONDS": "0", "DELETION_LANES": "1"},
    )
    job = _start_job("olga")

    wait_for(lambda: DeletionJob.objects.get(id=job.id).is_finished, timeout=60, message="job")
    tombstones = assert_deleted_exactly(job, [m.id for m in mine], history_purged=13)
    assert [len(t.ids) for t in tombstones] == [7] * 8 + [4]
    job.refresh_from_db()
    assert job.batches == 9 and job.attempts >= 9  # one task (one ticket) per batch


def test_expiry_beat_task_deletes_only_expired_memories_through_the_engine(celery_worker):
    import datetime

    from django.utils import timezone

    today = timezone.localdate()
    expired = memories_add(
        texts=["old"] * 3, user_id="pia", expiration_date=today - datetime.timedelta(days=2)
    )
    memory_update(memory=expired[1], text="old, changed")
    kept = memories_add(texts=["today"], user_id="pia", expiration_date=today)
    kept += memories_add(texts=["plain"], user_id="pia")
    memory_update(memory=kept[1], text="plain, changed")

    memories_purge_expired_task.delay()

    wait_for(
        lambda: DeletionJob.objects.filter(kind="expiry", status="SUCCEEDED").exists(),
        timeout=60,
        message="expiry",
    )
    job = DeletionJob.objects.get(kind="expiry")
    assert_deleted_exactly(job, [m.id for m in expired], history_purged=1)
    assert Memory.objects.filter(id__in=[m.id for m in kept]).count() == 2
    assert history_rows([kept[1].id]) == 1
