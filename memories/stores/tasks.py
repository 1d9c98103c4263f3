"""Thin Celery wrapper of the connected stores' jobs: it takes a job id (never a scope or a secret)."""

import os

from celery import shared_task

from . import jobs
from .base import StoreError, StoreUnavailable

MAX_RETRIES = int(os.environ.get("STORE_JOB_MAX_RETRIES", "8"))
MAX_BACKOFF = float(os.environ.get("STORE_JOB_MAX_BACKOFF_SECONDS", "60"))


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=MAX_RETRIES)
def store_job_run_task(self, job_id: str) -> None:
    """Runs one time budget of a store job and sends its continuation; a store that stays unavailable is retried
    with backoff, then the job fails naming why (a connector's message, never data)."""
    try:
        finished = jobs.store_job_run(job_id=job_id)
    except StoreUnavailable as exc:
        if self.request.retries >= self.max_retries:
            jobs.store_job_fail(job_id=job_id, error=str(exc))
            return
        jobs.store_job_note_error(job_id=job_id, error=str(exc))
        raise self.retry(countdown=min(2**self.request.retries, MAX_BACKOFF)) from None
    except StoreError as exc:
        jobs.store_job_fail(job_id=job_id, error=str(exc))
        return
    except Exception as exc:  # a bug, not an outage: fail visibly (class name only) instead of looping
        jobs.store_job_fail(job_id=job_id, error=type(exc).__name__)
        raise
    if not finished:
        store_job_run_task.delay(job_id)
