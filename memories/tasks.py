"""Thin Celery wrappers around the deletion engine: they take ids and call one service (STYLE.md rule 3)."""

import logging

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerError

from . import engine
from .models import DeletionJob
from .stores.jobs import store_jobs_resume_stale
from .stores.tasks import store_job_run_task  # noqa: F401 - registered with the worker through this module

RETRYABLE = (OperationalError, InterfaceError, BrokerError, ConnectionError)

logger = logging.getLogger(__name__)


@shared_task(
    bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=settings.DELETION_TASK_MAX_RETRIES
)
def deletion_job_run_task(self, job_id: str, ticket: int | None = None) -> None:
    """Runs one time budget of a job; the engine dispatches the continuation itself (memories.engine docstring)."""
    try:
        engine.deletion_job_run(job_id=job_id, ticket=ticket)
    except (
        DeletionJob.DoesNotExist
    ):  # jobs are never deleted: a message outliving its database (tests, a restore)
        logger.warning("deletion job not found: message dropped", extra={"job": job_id})
        return
    except RETRYABLE as exc:
        if self.request.retries >= self.max_retries:
            engine.deletion_job_fail(job_id=job_id, error=type(exc).__name__)
            return
        raise self.retry(exc=exc, countdown=min(2**self.request.retries, 60)) from None
    except Exception as exc:  # a bug, not an outage: fail visibly (class name only) instead of looping
        engine.deletion_job_fail(job_id=job_id, error=type(exc).__name__)
        raise


@shared_task(acks_late=True)
def deletion_jobs_resume_stale_task() -> None:
    engine.deletion_jobs_resume_stale()
    store_jobs_resume_stale()  # the connected stores' jobs, on the same beat


@shared_task(acks_late=True)
def memories_tombstones_merge_task() -> None:
    engine.memories_tombstones_merge()


@shared_task(acks_late=True)
def memories_purge_expired_task() -> None:
    engine.memories_purge_expired()
