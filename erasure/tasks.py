"""Thin Celery wrappers of the erasure workflow: they take ids and call one service (STYLE.md rule 3)."""

import logging

from celery import current_task, shared_task
from django.conf import settings

from . import services
from .models import ErasureRequest, State

VERIFY_MAX_RETRIES = 10
INLINE_AFTER = "memories.tasks.deletion_job_run_task"

logger = logging.getLogger(__name__)


def verify_now_or_enqueue(request_id: str) -> None:
    """Runs after the commit that moved a request to `deleted`. In the worker task whose deletion job just
    finished, the verification runs right here (one task and one broker round trip less per request); when it
    cannot complete (residue to wait for, an error) or anywhere else, the verification task takes over with its
    retries and back-off. A worker killed in between leaves the request in `deleted`, where the beat sweeper
    (erasure_requests_resume_stale) finds it."""
    # current_task is a proxy: outside a task it stands for None, and getattr then falls back to the default
    if settings.ERASURE_VERIFY_INLINE and getattr(current_task, "name", None) == INLINE_AFTER:
        try:
            services.erasure_request_verify(request_id=request_id)
            return
        except services.IllegalTransition:
            return  # verified (or moved on) by someone else
        except Exception as exc:  # noqa: BLE001 - the task below retries; class name only, never data
            logger.warning("inline verification deferred to the task", extra={"error": type(exc).__name__})
    erasure_request_verify_task.delay(request_id)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=VERIFY_MAX_RETRIES)
def erasure_request_verify_task(self, request_id: str) -> None:
    if not ErasureRequest.objects.filter(id=request_id, state=State.DELETED).exists():
        return  # already verified (a duplicate delivery) or moved on
    try:
        services.erasure_request_verify(request_id=request_id)
    except services.IllegalTransition:
        return  # a concurrent delivery verified it first
    except services.VerificationIncomplete:
        if self.request.retries >= self.max_retries:
            request = ErasureRequest.objects.get(id=request_id)
            services.erasure_request_fail(request=request, reason="verification found residue")
            return
        raise self.retry(countdown=min(2**self.request.retries, 30)) from None


@shared_task(acks_late=True)
def erasure_requests_resume_stale_task() -> None:
    services.erasure_requests_resume_stale()


@shared_task(acks_late=True)
def retention_policies_run_due_task() -> None:
    from .retention import retention_policies_run_due

    retention_policies_run_due()


@shared_task(acks_late=True)
def closed_requests_sweep_task() -> None:
    from .privacy import closed_requests_sweep

    closed_requests_sweep()
