"""The privacy team's pages: login, queue, new request, request detail and actions, legal holds, exports."""

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from erasure.models import AuditEntry, ErasureRequest, IdentityStatus, State
from erasure.services import erasure_request_create
from memories.models import LegalHold, Memory
from memories.services import memories_add
from tests.erasure.factories import request_in_state

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("dpo", password="correct-horse-battery", is_staff=True)


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def _detail(erasure) -> str:
    return f"/privacy-team/requests/{erasure.pk}/"


def _action(erasure, action) -> str:
    return f"/privacy-team/requests/{erasure.pk}/{action}/"


# --- access ----------------------------------------------------------------------------------------------------

STAFF_PAGES = [
    "/privacy-team/",
    "/privacy-team/requests/new/",
    "/privacy-team/holds/",
    "/privacy-team/exports/",
]


@pytest.mark.parametrize("path", STAFF_PAGES)
def test_staff_pages_send_anonymous_visitors_to_the_login_page(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/privacy-team/login/?next=")


@pytest.mark.parametrize("path", STAFF_PAGES)
def test_staff_pages_refuse_signed_in_accounts_without_staff_flag(client, path):
    user = get_user_model().objects.create_user("plain", password="correct-horse-battery")
    client.force_login(user)
    assert client.get(path).status_code == 403


def test_request_detail_and_actions_need_staff(client):
    erasure = request_in_state()
    assert client.get(_detail(erasure)).status_code == 302
    assert client.post(_action(erasure, "cancel"), {"cancel-note": ""}).status_code == 302
    erasure.refresh_from_db()
    assert erasure.state == State.RECEIVED


def test_login_lets_staff_in_and_keeps_other_accounts_out(client, staff):
    get_user_model().objects.create_user("plain", password="correct-horse-battery")
    page = client.get("/privacy-team/login/")
    assert page.status_code == 200 and 'for="id_username"' in page.content.decode()
    refused = client.post("/privacy-team/login/", {"username": "plain", "password": "correct-horse-battery"})
    assert refused.status_code == 200 and "correct username and password" in refused.content.decode()
    wrong = client.post("/privacy-team/login/", {"username": "dpo", "password": "nope"})
    assert wrong.status_code == 200 and "correct username and password" in wrong.content.decode()
    ok = client.post("/privacy-team/login/", {"username": "dpo", "password": "correct-horse-battery"})
    assert ok.status_code == 302 and ok["Location"] == "/privacy-team/"
    assert client.get("/privacy-team/").status_code == 200
    logout = client.post("/privacy-team/logout/")
    assert logout.status_code == 302
    assert client.get("/privacy-team/").status_code == 302


# --- queue -----------------------------------------------------------------------------------------------------


def test_queue_lists_requests_with_state_badges_and_highlights_overdue_ones(staff_client):
    fresh = request_in_state(user_ids=["queue-subject"])
    late = request_in_state(regulation="ccpa", due_at=timezone.localdate() - datetime.timedelta(days=3))
    done = request_in_state(state=State.VERIFIED)
    response = staff_client.get("/privacy-team/")
    html = response.content.decode()
    assert response.status_code == 200
    for erasure in (fresh, late, done):
        assert erasure.reference in html
    assert 'class="badge badge-received"' in html and 'class="badge badge-verified"' in html
    assert "3 days late" in html and 'class="is-overdue"' in html
    assert html.count('class="is-overdue"') == 1
    assert "queue-subject" not in html  # identifiers stay on the detail page


def test_queue_filters_by_state_regulation_and_overdue(staff_client):
    # (four subjects: a shared one would flag each row as a duplicate of the others, naming their references)
    gdpr = request_in_state(user_ids=["filter-1"], email="f1@example.test")
    ccpa = request_in_state(regulation="ccpa", user_ids=["filter-2"], email="f2@example.test")
    scoped = request_in_state(state=State.SCOPED, user_ids=["filter-3"], email="f3@example.test")
    late = request_in_state(
        due_at=timezone.localdate() - datetime.timedelta(days=1),
        user_ids=["filter-4"],
        email="f4@example.test",
    )
    by_state = staff_client.get("/privacy-team/?state=scoped").content.decode()
    assert scoped.reference in by_state and gdpr.reference not in by_state
    by_regulation = staff_client.get("/privacy-team/?regulation=ccpa").content.decode()
    assert ccpa.reference in by_regulation and gdpr.reference not in by_regulation
    overdue = staff_client.get("/privacy-team/?overdue=on").content.decode()
    assert late.reference in overdue and gdpr.reference not in overdue and ccpa.reference not in overdue
    bad = staff_client.get("/privacy-team/?state=nonsense")
    assert bad.status_code == 200  # an unknown filter value is ignored, not a 500


def test_queue_is_paginated(staff_client):
    for i in range(27):
        request_in_state(user_ids=[f"p{i}"])
    first = staff_client.get("/privacy-team/").content.decode()
    assert "Page 1 of 2" in first and first.count('<th scope="row"') == 25
    second = staff_client.get("/privacy-team/?page=2").content.decode()
    assert second.count('<th scope="row"') == 2


# --- new request -----------------------------------------------------------------------------------------------


def test_staff_creates_a_request_with_a_narrowed_scope(staff_client):
    response = staff_client.post(
        "/privacy-team/requests/new/",
        {"regulation": "ccpa", "user_ids": "phone-subject\n", "email": "", "agent_id": "support-bot",
         "metadata": '{"project": "alpha"}', "suppress": "on"},
    )  # fmt: skip
    erasure = ErasureRequest.objects.get()
    assert response.status_code == 302 and response["Location"] == _detail(erasure)
    assert erasure.channel == "staff" and erasure.created_by == "dpo"
    assert erasure.scope == {"agent_id": "support-bot", "metadata": {"project": "alpha"}}
    assert erasure.suppress is True
    assert AuditEntry.objects.filter(request=erasure, actor="dpo", action="request.created").exists()


def test_staff_new_request_form_names_the_bad_fields(staff_client):
    response = staff_client.post(
        "/privacy-team/requests/new/", {"regulation": "xx", "user_ids": "", "metadata": "[1, 2"}
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert 'id="id_regulation_error"' in html and 'id="id_user_ids_error"' in html
    assert 'id="id_metadata_error"' in html and "valid JSON" in html
    assert ErasureRequest.objects.count() == 0


# --- detail and actions ----------------------------------------------------------------------------------------


def test_detail_shows_identifiers_deadline_audit_and_only_the_allowed_buttons(staff_client):
    # given: a request created through the service (which writes its first audit entry)
    erasure, _token = erasure_request_create(
        regulation="gdpr", user_ids=["detail-subject"], email="d@example.test", channel="api", actor="test"
    )
    html = staff_client.get(_detail(erasure)).content.decode()
    assert "detail-subject" in html and "d@example.test" in html
    assert "request.created" in html  # audit trail
    assert erasure.due_at.strftime("%-d %b %Y") in html
    assert "/verify-identity/" in html and "/reject/" in html and "/cancel/" in html and "/extend/" in html
    assert "/scope/" not in html and "/approve/" not in html and "/retry/" not in html


def test_verify_identity_then_scope_shows_exact_counts(staff_client):
    memories_add(texts=["a", "b"], user_id="count-subject", agent_id="bot", run_id="r1")
    memories_add(texts=["c"], user_id="count-subject", agent_id="coach")
    memories_add(texts=["not them"], user_id="someone-else", agent_id="bot")
    erasure = request_in_state(user_ids=["count-subject"])
    # when
    response = staff_client.post(
        _action(erasure, "verify-identity"), {"verify_identity-note": "account e-mail ok"}
    )
    # then
    assert response.status_code == 302
    erasure.refresh_from_db()
    assert erasure.identity_status == IdentityStatus.VERIFIED and erasure.identity_verified_by == "dpo"
    # when
    staff_client.post(_action(erasure, "scope"))
    # then
    erasure.refresh_from_db()
    assert erasure.state == State.SCOPED and erasure.scoped_total == 3
    html = staff_client.get(_detail(erasure)).content.decode()
    assert "Scope computed." in html
    assert '<span class="stat-value">3</span>' in html
    assert '<code>bot</code></td><td class="num">2</td>' in html.replace("\n", "")
    assert "/approve/" in html and "/verify-identity/" not in html
    assert AuditEntry.objects.filter(request=erasure, actor="dpo").count() == 2


def test_approve_has_a_confirm_step_and_starts_the_deletion(staff_client, django_capture_on_commit_callbacks):
    memories_add(texts=["x"], user_id="approve-subject")
    erasure = request_in_state(user_ids=["approve-subject"])
    staff_client.post(_action(erasure, "verify-identity"), {"verify_identity-note": "ok"})
    staff_client.post(_action(erasure, "scope"))
    confirm = staff_client.get(_action(erasure, "approve"))
    assert confirm.status_code == 200 and "Approve and erase" in confirm.content.decode()
    unconfirmed = staff_client.post(_action(erasure, "approve"), {})
    assert unconfirmed.status_code == 400 and "Tick the box" in unconfirmed.content.decode()
    erasure.refresh_from_db()
    assert erasure.approved_at is None
    # when
    with django_capture_on_commit_callbacks():
        response = staff_client.post(_action(erasure, "approve"), {"confirm": "on"})
    # then
    assert response.status_code == 302
    erasure.refresh_from_db()
    assert erasure.approved_at is not None and erasure.approved_by == "dpo" and erasure.deletion_job_id
    html = staff_client.get(_detail(erasure)).content.decode()
    assert 'id="progress"' in html and "progress.js" in html
    progress = staff_client.get(f"/privacy-team/requests/{erasure.pk}/progress.json").json()
    assert progress["running"] is True and progress["total"] == 1


def test_reject_needs_a_drp_reason(staff_client):
    erasure = request_in_state()
    bad = staff_client.post(_action(erasure, "reject"), {"reject-reason": "because", "reject-note": ""})
    assert bad.status_code == 400 and 'id="id_reject-reason_error"' in bad.content.decode()
    ok = staff_client.post(
        _action(erasure, "reject"), {"reject-reason": "no_match", "reject-note": "none found"}
    )
    assert ok.status_code == 302
    erasure.refresh_from_db()
    assert erasure.state == State.REJECTED and erasure.rejection_reason == "no_match"


def test_cancel_and_extend(staff_client):
    erasure = request_in_state()
    due = erasure.due_at
    assert staff_client.post(_action(erasure, "extend"), {"extend-reason": ""}).status_code == 400
    staff_client.post(_action(erasure, "extend"), {"extend-reason": "many requests this month"})
    erasure.refresh_from_db()
    assert erasure.due_at > due and erasure.extension_reason == "many requests this month"
    staff_client.post(_action(erasure, "cancel"), {"cancel-note": "withdrawn by subject"})
    erasure.refresh_from_db()
    assert erasure.state == State.CANCELLED


def test_an_illegal_transition_is_shown_as_a_message_not_a_500(staff_client):
    erasure = request_in_state(state=State.VERIFIED)
    # when
    response = staff_client.post(_action(erasure, "cancel"), {"cancel-note": ""}, follow=True)
    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert "Cannot cancel" in html and "it is now verified" in html
    erasure.refresh_from_db()
    assert erasure.state == State.VERIFIED


def test_scoping_before_identity_verification_is_refused_with_a_message(staff_client):
    erasure = request_in_state()
    html = staff_client.post(_action(erasure, "scope"), follow=True).content.decode()
    assert "Cannot scope" in html
    erasure.refresh_from_db()
    assert erasure.state == State.RECEIVED


def test_retry_appears_only_for_failed_requests(staff_client):
    failed = request_in_state(state=State.FAILED, failure_reason="worker lost")
    html = staff_client.get(_detail(failed)).content.decode()
    assert "/retry/" in html and "worker lost" in html


def test_unknown_action_is_404(staff_client):
    erasure = request_in_state()
    assert staff_client.post(_action(erasure, "explode")).status_code == 404


def test_actions_are_csrf_protected(staff):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    erasure = request_in_state()
    response = client.post(_action(erasure, "cancel"), {"cancel-note": ""})
    assert response.status_code == 403
    erasure.refresh_from_db()
    assert erasure.state == State.RECEIVED


# --- legal holds and exports -----------------------------------------------------------------------------------


def test_place_and_lift_a_legal_hold(staff_client):
    memories_add(texts=["m1", "m2"], user_id="hold-subject", agent_id="legal")
    memories_add(texts=["m3"], user_id="hold-subject", agent_id="bot")
    # when
    response = staff_client.post(
        "/privacy-team/holds/",
        {"user_id": "hold-subject", "agent_id": "legal", "reason": "art17_3_e", "note": "case 12"},
        follow=True,
    )
    # then
    hold = LegalHold.objects.get()
    assert hold.memories_held == 2 and hold.placed_by == "dpo"
    assert Memory.objects.filter(legal_hold=hold).count() == 2
    html = response.content.decode()
    assert "Hold placed on 2 memories" in html and "case 12" in html
    assert "hold-subject" not in html  # the hold record keeps only pseudonyms
    # when
    staff_client.post(f"/privacy-team/holds/{hold.pk}/lift/")
    # then
    hold.refresh_from_db()
    assert hold.lifted_at is not None and hold.lifted_by == "dpo"
    assert Memory.objects.filter(legal_hold__isnull=False).count() == 0


def test_a_hold_needs_a_filter_and_a_ground(staff_client):
    response = staff_client.post("/privacy-team/holds/", {"reason": "", "note": ""})
    html = response.content.decode()
    assert response.status_code == 400
    assert "Give at least one of" in html and 'id="id_reason_error"' in html
    assert LegalHold.objects.count() == 0


def test_exports_page_offers_the_audit_export(staff_client):
    html = staff_client.get("/privacy-team/exports/").content.decode()
    assert 'action="/privacy-team/exports/download/"' in html
    assert 'name="from"' in html and 'name="to"' in html and 'name="format"' in html


def test_export_download_validates_the_dates(staff_client):
    response = staff_client.get("/privacy-team/exports/download/?format=csv&from=2026-02-01&to=2026-01-01")
    assert response.status_code in (400, 503)


def test_holds_placed_and_lifted_in_the_ui_are_audited(staff_client):
    memories_add(texts=["m"], user_id="audited-hold")
    staff_client.post("/privacy-team/holds/", {"user_id": "audited-hold", "reason": "art17_3_b", "note": ""})
    hold = LegalHold.objects.get()
    staff_client.post(f"/privacy-team/holds/{hold.pk}/lift/")
    actions = list(AuditEntry.objects.filter(actor="dpo").values_list("action", flat=True))
    assert actions == ["legal_hold.placed", "legal_hold.lifted"]


def test_export_download_streams_the_audit_export_for_staff_sessions(staff_client):
    erasure = request_in_state()
    response = staff_client.get("/privacy-team/exports/download/?format=csv&from=2000-01-01&to=2100-01-01")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    assert body.startswith("record,reference") and erasure.reference in body
    assert "subject-1" not in body  # pseudonyms only
    as_json = staff_client.get("/privacy-team/exports/download/?format=json")
    assert as_json.status_code == 200 and as_json["Content-Type"] == "application/json"
    assert AuditEntry.objects.filter(actor="dpo", action="audit.exported").count() == 2


def test_staff_download_the_signed_certificate_of_a_verified_request(staff_client):
    from erasure.certificate import certificate_is_authentic
    from tests.erasure.factories import canary_request

    # given
    erasure = canary_request(state=State.VERIFIED)
    detail = staff_client.get(f"/privacy-team/requests/{erasure.pk}/").content.decode()
    assert f"/privacy-team/requests/{erasure.pk}/certificate/?format=pdf" in detail
    # when
    as_json = staff_client.get(f"/privacy-team/requests/{erasure.pk}/certificate/")
    as_pdf = staff_client.get(f"/privacy-team/requests/{erasure.pk}/certificate/?format=pdf")
    # then
    assert as_json.status_code == 200 and certificate_is_authentic(as_json.json())
    assert as_pdf.status_code == 200 and as_pdf.content.startswith(b"%PDF")
    # issued once (at the first download here: the factory's request was never verified by the service)
    assert AuditEntry.objects.filter(request=erasure, actor="dpo", action="certificate.issued").count() == 1
    assert (
        AuditEntry.objects.filter(request=erasure, actor="dpo", action="certificate.downloaded").count() == 2
    )


def test_no_certificate_before_verified_redirects_with_a_message(staff_client):
    erasure = request_in_state()
    response = staff_client.get(f"/privacy-team/requests/{erasure.pk}/certificate/", follow=True)
    assert response.redirect_chain and "only once the request is verified" in response.content.decode()
