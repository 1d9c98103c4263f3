"""Thin Celery wrappers around the deletion engine: they take ids and call one service (STYLE.md rule 3)."""

from celery import shared_task
from django.db import DatabaseError, InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerError

from . import engine

RETRYABLE = (OperationalError, InterfaceError, DatabaseError, BrokerError, ConnectionError)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=8)
def deletion_job_run_task(self, job_id: str) -> None:
    try:
        result = engine.deletion_job_run(job_id=job_id)
    except RETRYABLE as exc:
        if self.request.retries >= self.max_retries:
            engine.deletion_job_fail(job_id=job_id, error=type(exc).__name__)
            return
        raise self.retry(exc=exc, countdown=min(2**self.request.retries, 60)) from None
    if result.ran and not result.finished:
        deletion_job_run_task.delay(job_id)  # time budget spent: continue in a fresh task


@shared_task(acks_late=True)
def deletion_jobs_resume_stale_task() -> None:
    engine.deletion_jobs_resume_stale()


@shared_task(acks_late=True)
def memories_purge_expired_task() -> None:
    engine.memories_purge_expired()
