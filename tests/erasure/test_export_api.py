"""GET /api/v1/audit/export/ — streamed CSV or JSON of requests (no raw identifiers) and their audit trail."""

import csv
import io
import json
from datetime import UTC, datetime

import pytest
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from erasure.audit import audit_append
from tests.erasure.factories import CANARY_EMAIL, CANARY_USER, canary_request

URL = "/api/v1/audit/export/"


def day(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, 12, tzinfo=UTC)


@pytest.fixture
def three_requests(db):
    jan = canary_request(state="received", received_at=day(2026, 1, 5))
    feb = canary_request(received_at=day(2026, 2, 10))
    mar = canary_request(state="scoped", received_at=day(2026, 3, 20))
    return jan, feb, mar


def body(response) -> bytes:
    assert response.streaming
    return b"".join(response.streaming_content)


def test_json_export_filters_requests_by_date(staff_api, three_requests):
    jan, feb, mar = three_requests

    response = staff_api.get(URL, {"format": "json", "from": "2026-01-01", "to": "2026-02-10"})

    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    data = json.loads(body(response))
    assert data["export"]["from"] == "2026-01-01" and data["export"]["to"] == "2026-02-10"
    assert [r["reference"] for r in data["requests"]] == [jan.reference, feb.reference]  # `to` is inclusive
    feb_row = data["requests"][1]
    assert feb_row["state"] == "verified" and feb_row["deleted_count"] == 5
    assert feb_row["subject_pseudonyms"] == feb.subject_pseudonyms
    assert feb_row["due_at"] == feb.due_at.isoformat()
    # the audit entries of today are outside this range
    assert data["audit_entries"] == []


def test_export_includes_the_audit_trail_in_range_and_never_raw_identifiers(staff_api, three_requests):
    jan, _, _ = three_requests  # jan still holds the subject's identifiers in clear
    audit_append(
        actor="apikey:staff", action="request.scoped", request=jan, data={"state": "scoped", "total": 3}
    )
    today = timezone.now().date().isoformat()

    response = staff_api.get(URL, {"from": today, "to": today})

    raw = body(response)
    data = json.loads(raw)
    assert CANARY_USER.encode() not in raw and CANARY_EMAIL.encode() not in raw
    assert jan.reference in [r["reference"] for r in data["requests"]]  # activity today
    actions = [e["action"] for e in data["audit_entries"] if e["reference"] == jan.reference]
    assert "request.scoped" in actions
    entry = next(e for e in data["audit_entries"] if e["action"] == "request.scoped")
    assert set(entry) == {
        "entry_id",
        "reference",
        "created_at",
        "actor",
        "action",
        "data",
        "prev_hash",
        "entry_hash",
    }


def test_csv_export_streams_rows_with_a_record_column(staff_api, three_requests):
    jan, feb, mar = three_requests
    audit_append(actor='=HYPERLINK("http://x")', action="request.touched", request=mar, data={})

    response = staff_api.get(URL, {"format": "csv", "from": "2026-02-01"})

    assert response.status_code == 200 and response["Content-Type"] == "text/csv"
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(body(response).decode())))
    requests = [r for r in rows if r["record"] == "request"]
    entries = [r for r in rows if r["record"] == "audit_entry"]
    # jan was received before `from` but has audit activity (today) inside the open-ended range
    assert [r["reference"] for r in requests] == [jan.reference, feb.reference, mar.reference]
    assert requests[1]["deleted_count"] == "5" and requests[2]["deleted_count"] == ""
    touched = next(r for r in entries if r["action"] == "request.touched")
    assert touched["reference"] == mar.reference
    assert touched["actor"].startswith("'=")  # formula injection neutralised
    assert json.loads(touched["data"]) == {}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-13-01"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"from": "2026-03-01", "to": "2026-02-01"}, "to"),
        ({"format": "xlsx"}, "format"),
    ],
)
def test_bad_input_is_400_naming_the_field(staff_api, params, field):
    response = staff_api.get(URL, params)
    assert response.status_code == 400
    assert field in response.json()


def test_export_needs_a_staff_key(db, api):
    assert APIClient().get(URL).status_code == 401
    assert api.get(URL).status_code == 403


def test_export_is_itself_audited(staff_api):
    staff_api.get(URL, {"format": "csv", "from": "2026-01-01", "to": "2026-01-31"})
    from erasure.models import AuditEntry

    entry = AuditEntry.objects.get(action="audit.exported")
    assert entry.data == {"format": "csv", "from": "2026-01-01", "to": "2026-01-31", "via": "api"}


def test_openapi_documents_the_proof_endpoints(db):
    schema = SchemaGenerator().get_schema(request=None, public=True)
    export = schema["paths"]["/api/v1/audit/export/"]["get"]
    assert {p["name"] for p in export["parameters"]} >= {"format", "from", "to"}
    cert = schema["paths"]["/api/v1/erasure-requests/{request_id}/certificate/"]["get"]
    assert "409" in cert["responses"] and any(p["name"] == "format" for p in cert["parameters"])
