"""Closed requests keep no personal data longer than needed.

- A closed request (rejected, cancelled, verified) is pseudonymised CLOSED_REQUEST_PII_DAYS (default 30) after it
  closed, and at once when another request of the same subject is verified; its free-text notes go with the
  identifiers (erasure.services.erasure_request_pseudonymise).
- A closed request's record is purged REQUEST_RETENTION_MONTHS (default 24, CCPA §7101 record-keeping) after it
  closed, with its stored certificate, leaving one count-only audit entry per purge. The audit chain is untouched:
  its entries keep the request's id as a plain value (AuditEntry.request has no database constraint), so every
  entry hash still verifies; django-auditlog is switched off for the purge, so it writes no rows that would copy
  the purged record.
The beat runs closed_requests_sweep every CLOSED_REQUEST_SWEEP_SECONDS.
"""

import logging
from datetime import datetime, timedelta
from typing import Any

from auditlog.context import disable_auditlog
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .audit import audit_append
from .models import CLOSED_STATES, ErasureRequest, State

logger = logging.getLogger(__name__)

# When each closed state (erasure.models.CLOSED_STATES: no move leaves it) was reached.
_CLOSED_AT = {State.REJECTED: "rejected_at", State.CANCELLED: "cancelled_at", State.VERIFIED: "verified_at"}
assert set(_CLOSED_AT) == set(CLOSED_STATES), "a closed state without its timestamp here"
BATCH = 500


def closed_before(cutoff: datetime) -> Q:
    """Requests that closed before `cutoff` (by the timestamp of their closing state)."""
    q = Q()
    for state, field in _CLOSED_AT.items():
        q |= Q(state=state, **{f"{field}__lt": cutoff})
    return q


def months_before(moment: datetime, months: int) -> datetime:
    """The same day and time `months` calendar months earlier (the month's last day when it is shorter)."""
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    for day in range(moment.day, 27, -1):
        try:
            return moment.replace(year=year, month=month + 1, day=day)
        except ValueError:
            continue
    return moment.replace(year=year, month=month + 1, day=min(moment.day, 28))


def _pseudonymise_ids(ids: list[Any], actor: str) -> int:
    from .services import erasure_request_pseudonymise  # the services import this module

    done = 0
    for request_id in ids:
        with transaction.atomic():
            request = (
                ErasureRequest.objects.select_for_update(skip_locked=True)
                .filter(id=request_id, pseudonymised_at__isnull=True, state__in=CLOSED_STATES)
                .first()
            )
            if request is not None:
                erasure_request_pseudonymise(request=request, actor=actor)
                done += 1
    return done


def subject_closed_requests_pseudonymise(*, request: ErasureRequest, actor: str = "worker") -> int:
    """Pseudonymises the other closed requests of this request's subject (same user id or e-mail, by their keyed
    hashes) that still hold identifiers. Side effects: those rows, one audit entry each. Returns how many."""
    pseudonyms = request.subject_pseudonyms or {}
    same_subject = Q()
    for user_hash in pseudonyms.get("user_ids") or []:
        same_subject |= Q(subject_pseudonyms__user_ids__contains=[user_hash])
    if pseudonyms.get("email"):
        same_subject |= Q(subject_pseudonyms__email=pseudonyms["email"])
    if not same_subject:
        return 0
    ids = list(
        ErasureRequest.objects.filter(pseudonymised_at__isnull=True, state__in=CLOSED_STATES)
        .filter(same_subject)
        .exclude(id=request.id)
        .values_list("id", flat=True)
    )
    return _pseudonymise_ids(ids, actor)


def erasure_request_verified_compliance(*, request: ErasureRequest) -> None:
    """What verification adds for compliance, in its transaction: the certificate issued and stored, and the
    subject's other closed requests pseudonymised."""
    from .certificate import certificate_issue_on_verify

    certificate_issue_on_verify(request=request)
    subject_closed_requests_pseudonymise(request=request, actor="worker")


def closed_requests_pseudonymise(*, now: datetime | None = None) -> int:
    """Pseudonymises requests closed more than CLOSED_REQUEST_PII_DAYS ago that still hold identifiers. Side
    effects: those rows (ids, e-mail, clear scope, notes), one audit entry each. Returns how many."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.CLOSED_REQUEST_PII_DAYS)
    ids = list(
        ErasureRequest.objects.filter(pseudonymised_at__isnull=True)
        .filter(closed_before(cutoff))
        .values_list("id", flat=True)
    )
    return _pseudonymise_ids(ids, "beat")


def closed_requests_purge(*, now: datetime | None = None) -> int:
    """Deletes the records of requests closed more than REQUEST_RETENTION_MONTHS ago (their certificates with
    them), BATCH per transaction, each batch leaving one `requests.purged` audit entry with its count only.
    Returns how many."""
    now = now or timezone.now()
    cutoff = months_before(now, settings.REQUEST_RETENTION_MONTHS)
    purged = 0
    while True:
        with transaction.atomic():
            ids = list(
                ErasureRequest.objects.select_for_update(skip_locked=True)
                .filter(closed_before(cutoff))
                .order_by("received_at")
                .values_list("id", flat=True)[:BATCH]
            )
            if not ids:
                break
            with disable_auditlog():
                ErasureRequest.objects.filter(id__in=ids).delete()
            audit_append(
                actor="beat",
                action="requests.purged",
                data={"count": len(ids), "closed_before": cutoff.date().isoformat()},
            )
        purged += len(ids)
        if len(ids) < BATCH:
            break
    if purged:
        logger.info("closed request records purged", extra={"count": purged})
    return purged


def closed_requests_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """The beat's pass: pseudonymise what is due, then purge what is due. Returns both counts."""
    return {
        "pseudonymised": closed_requests_pseudonymise(now=now),
        "purged": closed_requests_purge(now=now),
    }
