"""`manage.py export_audit` gives exactly what GET /api/v1/audit/export/ gives."""

import json

import pytest
from django.core.management import CommandError, call_command

from erasure.models import AuditEntry
from erasure.services import erasure_request_reject
from tests.erasure.factories import request_in_state as make_request

pytestmark = pytest.mark.django_db


def _some_requests():
    make_request(user_ids=["exp-1"])
    erasure_request_reject(request=make_request(user_ids=["exp-2"]), actor="staff", reason="no_match")


def test_the_csv_file_is_byte_for_byte_the_api_export(staff_api, tmp_path):
    _some_requests()
    api = staff_api.get("/api/v1/audit/export/", {"format": "csv", "from": "2000-01-01", "to": "2999-12-31"})
    api_bytes = b"".join(api.streaming_content)
    out = tmp_path / "audit.csv"

    call_command(
        "export_audit", "--from", "2000-01-01", "--to", "2999-12-31", "--format", "csv", "--output", str(out)
    )

    assert out.read_bytes() == api_bytes
    assert api_bytes.count(b"\naudit_entry,") >= 4 and b"exp-1" not in api_bytes
    assert AuditEntry.objects.filter(action="audit.exported", data__via="command").count() == 1


def test_the_json_file_is_the_api_export_but_for_its_generation_time(staff_api, tmp_path):
    _some_requests()
    api = json.loads(b"".join(staff_api.get("/api/v1/audit/export/", {"format": "json"}).streaming_content))
    out = tmp_path / "audit.json"

    call_command("export_audit", "--format", "json", "--output", str(out))

    mine = json.loads(out.read_text())
    for doc in (api, mine):
        doc["export"].pop("generated_at")
    assert mine == api and len(mine["requests"]) == 2


def test_a_reversed_range_is_refused(tmp_path):
    with pytest.raises(CommandError, match="--to"):
        call_command(
            "export_audit", "--from", "2026-02-01", "--to", "2026-01-01", "--output", str(tmp_path / "x")
        )
