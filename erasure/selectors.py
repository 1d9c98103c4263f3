"""Reads of erasure requests: lists with filters, the actions staff may take now, progress, the subject's link."""

import hashlib
import hmac
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from memories.models import DeletionJob
from memories.selectors import deletion_job_get

from .models import CLOSED_STATES, STAFF_ACTIONS, AuditEntry, ErasureRequest, State

OPEN_STATES = frozenset(s.value for s in State if s.value not in CLOSED_STATES)


def status_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def allowed_actions(request: ErasureRequest) -> list[str]:
    """The staff actions the table (erasure.models.TRANSITIONS) allows now, in STAFF_ACTIONS' order."""
    return [str(action) for action in STAFF_ACTIONS if request.move_allowed(action)]


def erasure_request_list(
    *,
    state: str | None = None,
    regulation: str | None = None,
    overdue: bool | None = None,
    channel: str | None = None,
) -> QuerySet[ErasureRequest]:
    qs = ErasureRequest.objects.all()
    if channel:
        qs = qs.filter(channel=channel)
    if state:
        qs = qs.filter(state=state)
    if regulation:
        qs = qs.filter(regulation=regulation)
    if overdue is not None:
        qs = erasure_request_filter_overdue(qs, overdue=overdue)
    return qs


def erasure_request_filter_overdue(
    qs: QuerySet[ErasureRequest], *, overdue: bool
) -> QuerySet[ErasureRequest]:
    late = Q(state__in=OPEN_STATES, due_at__lt=timezone.localdate())
    return qs.filter(late) if overdue else qs.exclude(late)


def erasure_request_get(*, request_id: Any) -> ErasureRequest | None:
    return ErasureRequest.objects.filter(id=request_id).select_related("deletion_job", "assigned_to").first()


def erasure_request_events(*, request: ErasureRequest) -> QuerySet[AuditEntry]:
    return AuditEntry.objects.filter(request=request).order_by("id")


def erasure_request_by_status_token(*, reference: str, token: str) -> ErasureRequest | None:
    """The request whose secret status token this is, compared in constant time; None otherwise."""
    if not reference or not token:
        return None
    request = ErasureRequest.objects.filter(reference=reference).first()
    if request is None or not request.status_token_hash:
        return None
    if not hmac.compare_digest(request.status_token_hash, status_token_hash(token)):
        return None
    return request


def progress(request: ErasureRequest) -> dict[str, Any]:
    """{"deleted", "total", "held", "job_status", "stores"}: live counters of the deletion job while it runs, and
    one entry per store (erasure.services.stores.stores_progress)."""
    job: DeletionJob | None = None
    if request.deletion_job_id:
        job = deletion_job_get(job_id=request.deletion_job_id)
    deleted = (
        request.deleted_count if request.deleted_count is not None else (job.deleted_count if job else 0)
    )
    result: dict[str, Any] = {
        "deleted": deleted,
        "total": request.scoped_total,
        "held": request.held_count if request.held_count is not None else request.scoped_held,
        "job_status": job.status if job else None,
    }
    from .services.stores import stores_progress  # the services import this module

    result["stores"] = stores_progress(request=request, builtin=result)  # each store's own bar
    return result
