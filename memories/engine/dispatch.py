"""Dispatch: every message sent for a job, and the moves that send them (create, continue, enqueue, fail, retry,
resume). The only module of the engine that imports its task.

Every message carries a ticket: the job's `attempts` counter (the number of times the job was dispatched) as it was
when the message was sent. Dispatching increments it in the same transaction, so only the newest message runs; an
older or duplicated one finds a newer ticket and leaves. Two deliveries of the *same* ticket cannot run at once (a
session-level advisory lock per job, memories.engine.run), and cannot both continue one after the other (the first
to finish its budget dispatches a new ticket). A SIGKILLed worker's connection closes, which releases the lock; the
beat sweeper re-sends the current ticket of jobs whose heartbeat went stale, backing off exponentially per job so
that a job merely waiting in a long queue does not pile up copies."""

import datetime
import logging
import uuid
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from ..models import DeletionJob
from ..pseudonyms import pseudonymise_scope
from ..scope import validate_scope
from ..signals import deletion_job_finished

logger = logging.getLogger(__name__)


def _send_on_commit(job_id: uuid.UUID, ticket: int) -> None:
    from ..tasks import deletion_job_run_task

    transaction.on_commit(lambda: deletion_job_run_task.delay(str(job_id), ticket))


def deletion_job_create(
    *, kind: str, scope: dict[str, Any], requested_by: str, enqueue: bool = True
) -> DeletionJob:
    """Creates a PENDING job. Side effects: one DeletionJob row; with enqueue, deletion_job_run_task is sent
    to the broker when the surrounding transaction commits."""
    job = DeletionJob.objects.create(
        kind=kind,
        scope=validate_scope(scope),
        scope_pseudonymised=pseudonymise_scope(scope),
        requested_by=requested_by,
        # dispatched at once: the first ticket (deletion_job_enqueue's increment, in the same INSERT)
        attempts=1 if enqueue else 0,
        heartbeat_at=timezone.now() if enqueue else None,
    )
    if enqueue:
        _send_on_commit(job.id, job.attempts)
    return job


def deletion_job_continue(job: DeletionJob, fields: list[str]) -> None:
    """Inside the transaction of a run's last step, whose caller saves `fields`: the job's next ticket, sent when
    that transaction commits (the continuation of a run whose time budget is spent)."""
    job.attempts += 1
    fields.append("attempts")
    _send_on_commit(job.id, job.attempts)


def deletion_job_enqueue(*, job_id: uuid.UUID) -> int:
    """Dispatches the job: increments its ticket (`attempts`) and sends deletion_job_run_task(job_id, ticket) when
    the surrounding transaction commits. Any message with an older ticket becomes a no-op. Returns the ticket."""
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute(
                f"UPDATE {DeletionJob._meta.db_table} SET attempts = attempts + 1, heartbeat_at = now()"
                " WHERE id = %s RETURNING attempts",
                [job_id],
            )
            (ticket,) = cur.fetchone()
        _send_on_commit(job_id, ticket)
    return int(ticket)


def deletion_job_fail(*, job_id: uuid.UUID | str, error: str) -> DeletionJob:
    """Marks a job FAILED after its retries ran out (the error is a class name, never data). Sends
    `deletion_job_finished`. Its cursor and counters stay, so deletion_job_retry resumes where it stopped."""
    # Called right after a database error: a broken connection is replaced (never one inside a transaction).
    if connection.connection is not None and not connection.in_atomic_block and not connection.is_usable():
        connection.close()
    with transaction.atomic():
        job = DeletionJob.objects.select_for_update().get(id=job_id)
        if not job.is_finished:
            job.status = DeletionJob.Status.FAILED
            job.error = error[:200]
            job.finished_at = timezone.now()
            job.save(update_fields=["status", "error", "finished_at"])
            deletion_job_finished.send(sender=DeletionJob, job=job)
    return job


def deletion_job_retry(*, job_id: uuid.UUID | str) -> DeletionJob:
    """FAILED → PENDING and re-dispatched (new ticket); the next run continues from the saved cursor and counters."""
    with transaction.atomic():
        job = DeletionJob.objects.select_for_update().get(id=job_id)
        if job.status == DeletionJob.Status.FAILED:
            job.status = DeletionJob.Status.PENDING
            job.error = ""
            job.finished_at = None
            job.save(update_fields=["status", "error", "finished_at"])
            job.attempts = deletion_job_enqueue(job_id=job.id)
    return job


def _sweep_key(job_id: uuid.UUID) -> str:
    return f"deletion-sweep:{job_id}"


def deletion_jobs_resume_stale(*, stale_seconds: float | None = None) -> int:
    """Re-sends the current ticket of open jobs whose heartbeat is older than stale_seconds (their task vanished:
    a killed worker, a lost broker message, a send that failed after commit). The ticket is not incremented, so a
    copy still waiting in a long queue and the re-sent one are the same ticket: whichever runs first works, the
    other finds the lock held or a newer ticket. Without progress in between, the re-sends of one job back off
    exponentially (after stale, 2×stale, 4×stale, … tracked in the cache) so a backlog does not fill with copies.
    Side effects: heartbeat_at of each re-sent job; messages sent on commit. Returns how many were sent."""
    stale = settings.DELETION_STALE_SECONDS if stale_seconds is None else stale_seconds
    now = timezone.now()
    sent = 0
    with transaction.atomic():
        # SKIP LOCKED: a job whose row is locked is inside a batch right now, hence alive.
        candidates = (
            DeletionJob.objects.select_for_update(skip_locked=True)
            .filter(status__in=[DeletionJob.Status.PENDING, DeletionJob.Status.RUNNING], parent__isnull=True)
            .filter(
                Q(heartbeat_at__lt=now - datetime.timedelta(seconds=stale))
                | Q(heartbeat_at__isnull=True, created_at__lt=now - datetime.timedelta(seconds=stale))
            )
            .order_by("created_at")
            .values_list("id", "attempts", "heartbeat_at", "created_at")[:1000]
        )
        for job_id, ticket, heartbeat, created in candidates:
            last = heartbeat or created
            resends, seen = cache.get(_sweep_key(job_id)) or (0, None)
            if seen != last.isoformat():
                resends = 0  # progress since our last re-send (or none yet): start the back-off again
            if (now - last).total_seconds() < stale * 2 ** min(resends, 10):
                continue
            DeletionJob.objects.filter(id=job_id).update(heartbeat_at=now)
            cache.set(_sweep_key(job_id), (resends + 1, now.isoformat()), timeout=7 * 86400)
            _send_on_commit(job_id, ticket)
            sent += 1
    if sent:
        logger.warning("re-sent stale deletion jobs", extra={"count": sent})
    return sent
