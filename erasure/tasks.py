"""Thin Celery wrappers of the erasure workflow: they take ids and call one service (STYLE.md rule 3)."""

import os

from celery import shared_task

from . import services
from .models import ErasureRequest, State

VERIFY_MAX_RETRIES = int(os.environ.get("VERIFY_MAX_RETRIES", "10"))


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=VERIFY_MAX_RETRIES)
def erasure_request_verify_task(self, request_id: str) -> None:
    if not ErasureRequest.objects.filter(id=request_id, state=State.DELETED).exists():
        return  # already verified (a duplicate delivery) or moved on
    try:
        services.erasure_request_verify(request_id=request_id)
    except services.IllegalTransition:
        return  # a concurrent delivery verified it first
    except services.VerificationIncomplete as exc:
        if self.request.retries >= self.max_retries:
            request = ErasureRequest.objects.get(id=request_id)
            # the message is a fixed phrase, naming a store and counts at most: never data
            services.erasure_request_fail(request=request, reason=f"verification found residue: {exc}")
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
