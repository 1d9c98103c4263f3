"""Reads for the compliance export: requests (non-personal columns only) and their audit entries in a time range.

Both are streamed with server-side cursors, so an export of any size uses bounded memory.
"""

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.db.models import Q

from .models import AuditEntry, ErasureRequest

# Never exported: subject_user_ids, subject_email, scope, scoped_by_agent/run, notes, status_token_hash.
PERSONAL_COLUMNS = frozenset(
    {
        "subject_user_ids",
        "subject_email",
        "scope",
        "scoped_by_agent",
        "scoped_by_run",
        "identity_note",
        "rejection_note",
        "extension_reason",
        "status_token_hash",
    }
)


def _range(field: str, start: datetime | None, end: datetime | None) -> Q:
    q = Q()
    if start is not None:
        q &= Q(**{f"{field}__gte": start})
    if end is not None:
        q &= Q(**{f"{field}__lt": end})
    return q


def export_requests(
    *, start: datetime | None, end: datetime | None, columns: list[str], chunk_size: int = 500
) -> Iterator[dict[str, Any]]:
    """Requests received in [start, end) or with audit activity in it, oldest first, as dicts of `columns`."""
    leaked = PERSONAL_COLUMNS.intersection(columns)
    if leaked:
        raise ValueError(f"personal columns may not be exported: {sorted(leaked)}")
    active = (
        AuditEntry.objects.filter(_range("created_at", start, end)).exclude(reference="").values("reference")
    )
    qs = ErasureRequest.objects.filter(_range("received_at", start, end) | Q(reference__in=active))
    return qs.order_by("received_at", "id").values(*columns).iterator(chunk_size=chunk_size)


def export_entries(
    *, start: datetime | None, end: datetime | None, chunk_size: int = 2000
) -> Iterator[AuditEntry]:
    """The requests' audit entries (erasure steps and their auditlog rows) created in [start, end), in chain
    order."""
    qs = AuditEntry.objects.filter(_range("created_at", start, end)).exclude(reference="")
    return qs.order_by("id").iterator(chunk_size=chunk_size)
