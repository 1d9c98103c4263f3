"""Proof endpoints of the Erasure API: the deletion certificate (JSON or PDF) and the compliance export (CSV or JSON).

Both read `?format=` themselves: DRF would otherwise treat it as a renderer override (URL_FORMAT_OVERRIDE) and
answer 404 for `pdf` or `csv`, so these views use a negotiation class that ignores it.
"""

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from memories.auth import IsStaffKey

from ..audit import audit_append
from ..certificate import CertificateNotAvailable, certificate_build, certificate_pdf
from ..export import export_entries, export_requests
from ..models import STAFF_ACTIONS, TRANSITIONS, AuditEntry, ErasureRequest
from .serializers import ConflictOutput


class IgnoreFormatParam(DefaultContentNegotiation):
    """JSON answers always; `format` is the view's own parameter here, not a renderer override."""

    def select_renderer(self, request: Any, renderers: Any, format_suffix: Any = None) -> Any:
        renderer = renderers[0]
        return renderer, renderer.media_type


def actor_of(request: Request) -> str:
    return str(getattr(request.user, "username", "") or "apikey")


class ProofApi(APIView):
    permission_classes = [IsStaffKey]
    content_negotiation_class = IgnoreFormatParam


class CertificateApi(ProofApi):
    class InputSerializer(serializers.Serializer):
        format = serializers.ChoiceField(choices=["json", "pdf"], default="json", required=False)

    @extend_schema(
        operation_id="erasure_request_certificate",
        summary="The signed proof of deletion (JSON, or ?format=pdf)",
        parameters=[
            OpenApiParameter("format", str, enum=["json", "pdf"], description="json (default) or pdf")
        ],
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description='{"certificate": {...}, "signature": base64 Ed25519, "public_key": PEM, "key_id"}; '
                "application/pdf with ?format=pdf",
            ),
            400: OpenApiResponse(description="Bad format: the body names the field"),
            404: OpenApiResponse(description="No such request"),
            409: OpenApiResponse(ConflictOutput, description="Not verified yet: the current state"),
        },
    )
    def get(self, request: Request, request_id: Any) -> Any:
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        fmt = params.validated_data["format"]
        erasure_request = get_object_or_404(ErasureRequest, id=request_id)
        try:
            document = certificate_build(request=erasure_request)
        except CertificateNotAvailable as exc:
            allowed = [a for a in STAFF_ACTIONS if exc.state in TRANSITIONS[a][0]]
            body = {"error": str(exc), "state": exc.state, "allowed_actions": [str(a) for a in allowed]}
            return Response(body, status=status.HTTP_409_CONFLICT)
        audit_append(
            actor=actor_of(request),
            action="certificate.issued",
            request=erasure_request,
            data={
                "format": fmt,
                "key_id": document["key_id"],
                "chain_head": document["certificate"]["issuance"]["audit_chain_head"]["entry_id"],
            },
        )
        if fmt == "pdf":
            pdf = certificate_pdf(request=erasure_request, document=document)
            response = HttpResponse(pdf, content_type="application/pdf")
            response["Content-Disposition"] = f'inline; filename="{erasure_request.reference}.pdf"'
            return response
        return Response(document)


# --- compliance export ---------------------------------------------------------------------------------------

REQUEST_COLUMNS = [
    "reference",
    "regulation",
    "state",
    "channel",
    "received_at",
    "acknowledged_at",
    "identity_verified_at",
    "scoped_at",
    "approved_at",
    "deleted_at",
    "verified_at",
    "rejected_at",
    "cancelled_at",
    "failed_at",
    "notified_at",
    "pseudonymised_at",
    "extended_at",
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


class AuditExportApi(ProofApi):
    class InputSerializer(serializers.Serializer):
        format = serializers.ChoiceField(choices=["csv", "json"], default="json", required=False)
        # `from` is a Python keyword, hence the source mapping.
        from_ = serializers.DateField(required=False, input_formats=["%Y-%m-%d"])
        to = serializers.DateField(required=False, input_formats=["%Y-%m-%d"])

        def get_fields(self) -> dict[str, serializers.Field]:
            fields = super().get_fields()
            fields["from"] = fields.pop("from_")
            return fields

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            start, end = attrs.get("from"), attrs.get("to")
            if start and end and start > end:
                raise serializers.ValidationError({"to": ["must not be before 'from'"]})
            return attrs

    @extend_schema(
        operation_id="audit_export",
        summary="Compliance export: requests (pseudonyms and counts only) and their audit trail in a date range",
        parameters=[
            OpenApiParameter("format", str, enum=["csv", "json"], description="json (default) or csv"),
            OpenApiParameter("from", OpenApiTypes.DATE, description="first day (UTC), YYYY-MM-DD"),
            OpenApiParameter("to", OpenApiTypes.DATE, description="last day (UTC, inclusive), YYYY-MM-DD"),
        ],
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="JSON {export, requests, audit_entries}, or text/csv with a `record` column "
                "(request | audit_entry); streamed",
            ),
            400: OpenApiResponse(description="Bad date or format: the body names the field"),
        },
    )
    def get(self, request: Request) -> Any:
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        fmt = params.validated_data["format"]
        start_day, end_day = params.validated_data.get("from"), params.validated_data.get("to")
        start = datetime.combine(start_day, time.min, tzinfo=UTC) if start_day else None
        end = datetime.combine(end_day + timedelta(days=1), time.min, tzinfo=UTC) if end_day else None
        audit_append(
            actor=actor_of(request),
            action="audit.exported",
            data={"format": fmt, "from": _plain(start_day), "to": _plain(end_day)},
        )
        requests = export_requests(start=start, end=end, columns=REQUEST_COLUMNS)
        entries = export_entries(start=start, end=end)
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        if fmt == "csv":
            response = StreamingHttpResponse(_csv_stream(requests, entries), content_type="text/csv")
            response["Content-Disposition"] = f'attachment; filename="erasure-audit-{stamp}.csv"'
            return response
        meta = {"from": _plain(start_day), "to": _plain(end_day), "generated_at": timezone.now().isoformat()}
        response = StreamingHttpResponse(
            _json_stream(meta, requests, entries), content_type="application/json"
        )
        response["Content-Disposition"] = f'attachment; filename="erasure-audit-{stamp}.json"'
        return response
