"""Reads for the compliance export: requests (non-personal columns only) and their audit entries in a time range.

Both are streamed with server-side cursors, so an export of any size uses bounded memory.
"""

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from .audit import audit_append
from .downloads import Download
from .models import STATE_TIMESTAMPS, AuditEntry, ErasureRequest

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


# --- rows and streams ---------------------------------------------------------------------------------------

REQUEST_COLUMNS = [
    "reference",
    "regulation",
    "state",
    "channel",
    *STATE_TIMESTAMPS,
    "due_at",
    "scoped_total",
    "scoped_held",
    "deleted_count",
    "held_count",
    "history_purged_count",
    "deleted_ids_digest",
    "rejection_reason",
    "subject_pseudonyms",
    "scope_pseudonymised",
]
ENTRY_COLUMNS = ["entry_id", "created_at", "actor", "action", "data", "prev_hash", "entry_hash"]
CSV_COLUMNS = ["record", *REQUEST_COLUMNS, *ENTRY_COLUMNS]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def request_row(values: dict[str, Any]) -> dict[str, Any]:
    return {name: _plain(values[name]) for name in REQUEST_COLUMNS}


def entry_row(entry: AuditEntry) -> dict[str, Any]:
    return {
        "entry_id": entry.id,
        "reference": entry.reference,
        "created_at": entry.created_at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "data": entry.data,
        "prev_hash": entry.prev_hash,
        "entry_hash": entry.entry_hash,
    }


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        value = json.dumps(value, sort_keys=True, separators=(",", ":"))
    text = str(value)
    # Spreadsheet formula injection: an actor name such as "=HYPERLINK(…)" must stay text.
    return "'" + text if text.startswith(_FORMULA_START) else text


def _csv_stream(requests: Iterator[dict[str, Any]], entries: Iterator[AuditEntry]) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf)

    def emit(row: list[Any]) -> str:
        buf.seek(0)
        buf.truncate()
        writer.writerow([_csv_cell(v) for v in row])
        return buf.getvalue()

    yield emit(CSV_COLUMNS)
    for values in requests:
        row = request_row(values)
        yield emit(["request", *[row[c] for c in REQUEST_COLUMNS], *[""] * len(ENTRY_COLUMNS)])
    for entry in entries:
        erow = entry_row(entry)
        yield emit(
            [
                "audit_entry",
                entry.reference,
                *[""] * (len(REQUEST_COLUMNS) - 1),
                *[erow[c] for c in ENTRY_COLUMNS],
            ]
        )


def _json_stream(
    meta: dict[str, Any], requests: Iterator[dict[str, Any]], entries: Iterator[AuditEntry]
) -> Iterator[str]:
    yield '{"export":' + json.dumps(meta) + ',"requests":['
    for i, values in enumerate(requests):
        yield ("," if i else "") + json.dumps(request_row(values), sort_keys=True)
    yield '],"audit_entries":['
    for i, entry in enumerate(entries):
        yield ("," if i else "") + json.dumps(entry_row(entry), sort_keys=True)
    yield "]}"


def audit_export(
    *, fmt: str, date_from: date | None, date_to: date | None, actor: str, via: str = "api"
) -> Download:
    """The compliance export as a streamed download (UTC days, `to` inclusive). Side effect: one
    `audit.exported` audit entry. Used by GET /api/v1/audit/export/ and the privacy-team exports page."""
    start = datetime.combine(date_from, time.min, tzinfo=UTC) if date_from else None
    end = datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=UTC) if date_to else None
    audit_append(
        actor=actor,
        action="audit.exported",
        data={"format": fmt, "from": _plain(date_from), "to": _plain(date_to), "via": via},
    )
    requests = export_requests(start=start, end=end, columns=REQUEST_COLUMNS)
    entries = export_entries(start=start, end=end)
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    filename = f"erasure-audit-{stamp}.{fmt}"
    if fmt == "csv":
        return Download(_csv_stream(requests, entries), "text/csv", filename)
    meta = {"from": _plain(date_from), "to": _plain(date_to), "generated_at": timezone.now().isoformat()}
    return Download(_json_stream(meta, requests, entries), "application/json", filename)
