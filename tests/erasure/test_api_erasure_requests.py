"""The Erasure API over HTTP: authentication, create/list/detail, every action, 400/404/409 answers, schema."""

import re
import uuid

import pytest
from django.core.management import call_command

from erasure.models import STAFF_ACTIONS, AuditEntry, ErasureRequest, State
from memories.models import LegalHold, Memory
from memories.services import memories_add
from tests.erasure.factories import request_in_state

pytestmark = pytest.mark.django_db

BASE = "/api/v1/erasure-requests/"


def _create(client, **overrides):
    body = {
        "regulation": "gdpr",
        "subject": {"user_ids": ["api-subj"], "email": "s@example.test"},
        **overrides,
    }
    return client.post(BASE, body, format="json")


def test_no_key_is_401_and_a_memory_store_key_is_403(client, api):
    assert client.get(BASE).status_code == 401
    assert api.get(BASE).status_code == 403
    assert api.post(BASE, {}, format="json").status_code == 403
    assert api.get("/api/v1/legal-holds/").status_code == 403


def test_create_answers_201_with_reference_state_and_due_date(staff_api):
    response = _create(staff_api, scope={"agent_id": "bot"}, suppress=True)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["state"] == "received" and body["reference"].startswith("ER-")
    assert {"id", "received_at", "due_at", "status_url"} <= set(body)
    request = ErasureRequest.objects.get(id=body["id"])
    assert request.channel == "api" and request.suppress and request.scope == {"agent_id": "bot"}
    assert request.created_by == "apikey:staff-test"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"regulation": "hipaa"}, "regulation"),
        ({"subject": {"user_ids": []}}, "subject"),
        ({"subject": {"user_ids": ["x"], "email": "nope"}}, "subject"),
        ({"scope": {"user_id": "other"}}, "scope"),
        ({"scope": {"metadata": {}}}, "scope"),
        ({"suppress": "maybe"}, "suppress"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_create_with_bad_input_is_400_naming_the_field(staff_api, body, field):
    response = _create(staff_api, **body)
    assert response.status_code == 400
    assert field in response.json()
    assert not ErasureRequest.objects.exists()


def test_full_staff_flow_until_approval_through_the_api(staff_api):
    memories_add(texts=["m1", "m2"], user_id="api-subj", agent_id="bot", run_id="r1")
    memories_add(texts=["m3"], user_id="api-subj")
    request_id = _create(staff_api).json()["id"]
    url = f"{BASE}{request_id}/"
    # scoping before identity verification is a 409 naming the state and what is allowed
    response = staff_api.post(url + "scope/", {}, format="json")
    assert response.status_code == 409
    assert response.json()["state"] == "received" and "verify-identity" in response.json()["allowed_actions"]

    assert staff_api.post(url + "verify-identity/", {"note": "id card"}, format="json").status_code == 200
    response = staff_api.post(url + "scope/", {}, format="json")
    assert response.status_code == 200
    detail = response.json()
    assert detail["state"] == "scoped"
    assert detail["counts"]["scoped_total"] == 3 and detail["counts"]["scoped_held"] == 0
    assert detail["counts"]["scoped_by_agent"] == {"bot": 2, "": 1}
    assert detail["counts"]["scoped_by_run"] == {"r1": 2, "": 1}
    assert "approve" in detail["allowed_actions"]

    response = staff_api.post(url + "approve/", format="json")
    assert response.status_code == 200
    detail = response.json()
    assert detail["timestamps"]["approved_at"] and detail["progress"]["job_status"] == "PENDING"
    assert detail["progress"]["total"] == 3 and detail["allowed_actions"] == ["extend"]
    # a second approve loses: 409
    response = staff_api.post(url + "approve/", format="json")
    assert response.status_code == 409 and response.json()["allowed_actions"] == ["extend"]
    # the detail lists the audit events in order
    actions = [e["action"] for e in staff_api.get(url).json()["events"]]
    assert actions == ["request.created", "request.identity_verified", "request.scoped", "request.approved"]


@pytest.mark.parametrize("state", [s.value for s in State])
@pytest.mark.parametrize("action", [a.value for a in STAFF_ACTIONS])
def test_every_action_answers_200_or_409_as_the_table_says(staff_api, state, action):
    request = request_in_state(state=state, user_ids=["subj"])
    body = {"reject": {"reason": "other"}, "extend": {"reason": "busy"}}.get(action, {})
    allowed = staff_api.get(f"{BASE}{request.id}/").json()["allowed_actions"]
    response = staff_api.post(f"{BASE}{request.id}/{action}/", body, format="json")
    if action in allowed:
        assert response.status_code == 200, response.content
    else:
        assert response.status_code == 409, response.content
        assert response.json()["state"] == state
        assert response.json()["allowed_actions"] == allowed


def test_reject_with_an_unknown_code_is_400_naming_reason(staff_api):
    request = request_in_state()
    response = staff_api.post(f"{BASE}{request.id}/reject/", {"reason": "dislike"}, format="json")
    assert response.status_code == 400 and "reason" in response.json()
    response = staff_api.post(
        f"{BASE}{request.id}/reject/", {"reason": "no_match", "note": "x"}, format="json"
    )
    assert response.status_code == 200 and response.json()["rejection_reason"] == "no_match"


def test_extend_twice_is_400(staff_api):
    request = request_in_state(regulation="ccpa")
    url = f"{BASE}{request.id}/extend/"
    assert staff_api.post(url, {}, format="json").status_code == 400
    first = staff_api.post(url, {"reason": "complex"}, format="json")
    assert first.status_code == 200 and first.json()["timestamps"]["extended_at"]
    second = staff_api.post(url, {"reason": "again"}, format="json")
    assert second.status_code == 400 and "reason" in second.json()


def test_unknown_request_is_404(staff_api):
    assert staff_api.get(f"{BASE}{uuid.uuid4()}/").status_code == 404
    assert staff_api.post(f"{BASE}{uuid.uuid4()}/scope/", {}, format="json").status_code == 404


def test_list_filters_and_cursor_pages(staff_api):
    late = request_in_state(regulation="ccpa", due_at="2020-01-01")
    for _ in range(3):
        request_in_state(regulation="gdpr")
    body = staff_api.get(BASE, {"overdue": "true"}).json()
    assert [r["id"] for r in body["results"]] == [str(late.id)]
    assert body["results"][0]["overdue"] is True and body["results"][0]["days_left"] < 0
    assert len(staff_api.get(BASE, {"overdue": "false"}).json()["results"]) == 3
    assert len(staff_api.get(BASE, {"regulation": "gdpr"}).json()["results"]) == 3
    assert staff_api.get(BASE, {"state": "nonsense"}).status_code == 400
    # cursor pages of 2 cover all 4 exactly once
    seen, url = [], BASE + "?page_size=2"
    while url:
        page = staff_api.get(url).json()
        seen += [r["id"] for r in page["results"]]
        url = page["next"]
    assert len(seen) == 4 == len(set(seen))


def test_legal_holds_place_list_and_lift_with_audit(staff_api, api):
    memories_add(texts=["keep 1", "keep 2"], user_id="held-subj", agent_id="legal")
    memories_add(texts=["free"], user_id="held-subj", agent_id="bot")
    body = {"scope": {"user_id": "held-subj", "agent_id": "legal"}, "reason": "art17_3_e", "note": "case 12"}
    assert api.post("/api/v1/legal-holds/", body, format="json").status_code == 403
    response = staff_api.post("/api/v1/legal-holds/", body, format="json")
    assert response.status_code == 201 and response.json()["memories_held"] == 2
    hold_id = response.json()["id"]
    assert Memory.objects.filter(legal_hold_id=hold_id).count() == 2
    assert "held-subj" not in str(response.json())
    listed = staff_api.get("/api/v1/legal-holds/").json()["results"]
    assert [h["id"] for h in listed] == [hold_id]
    response = staff_api.post(f"/api/v1/legal-holds/{hold_id}/lift/", format="json")
    assert response.status_code == 200 and response.json()["active"] is False
    assert not Memory.objects.filter(legal_hold__isnull=False).exists()
    assert list(AuditEntry.objects.exclude(action="auditlog").values_list("action", flat=True)) == [
        "legal_hold.placed",
        "legal_hold.lifted",
    ]
    assert LegalHold.objects.get(id=hold_id).lifted_by == "apikey:staff-test"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scope": {"user_id": "x"}, "reason": "because"}, "reason"),
        ({"scope": {}, "reason": "art17_3_e"}, "scope"),
        ({"scope": {"colour": "x"}, "reason": "art17_3_e"}, "scope"),
    ],
)
def test_legal_hold_with_bad_input_is_400(staff_api, body, field):
    response = staff_api.post("/api/v1/legal-holds/", body, format="json")
    assert response.status_code == 400 and field in response.json()


def test_openapi_schema_is_valid_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    text = (tmp_path / "schema.yaml").read_text()
    assert "/api/v1/erasure-requests/{request_id}/approve/" in text and "ApiKeyAuth" in text


def test_schema_and_docs_pages_are_served_without_a_cdn(client):
    assert client.get("/api/schema/").status_code == 200
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html.lower() and "/static/drf_spectacular_sidecar/" in html
    # a CDN host or URL, not the letters "cdn" (the page's random CSRF token can hold them)
    assert not re.search(r"//cdn|cdn[.-]|unpkg|jsdelivr", html.lower())
