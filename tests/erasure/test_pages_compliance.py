"""The console's compliance pages: retention (dry run, run now), the CCPA report, the certificates ZIP, and the
suppression lift button (also in a real browser)."""

import io
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from erasure.models import AuditEntry, RetentionRun, State
from erasure.retention import retention_policy_create
from erasure.services import erasure_request_approve, erasure_request_verify
from memories import engine
from memories.models import Memory, WriteBlock
from memories.services import memories_add
from tests.erasure.factories import canary_request
from tests.erasure.factories import request_in_state as make_request

pytestmark = pytest.mark.django_db

PAGES = ["/privacy-team/retention/", "/privacy-team/reports/", "/privacy-team/exports/certificates/"]


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("dpo", password="e2e-password-123", is_staff=True)


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def _suppressed(user_id: str):
    request = erasure_request_approve(
        request=make_request(state=State.SCOPED, user_ids=[user_id], suppress=True), actor="staff"
    )
    engine.deletion_job_run(job_id=request.deletion_job_id, budget_seconds=float("inf"))
    return erasure_request_verify(request_id=request.id)


@pytest.mark.parametrize("path", PAGES)
def test_the_pages_are_for_staff_only(client, path):
    assert client.get(path).status_code == 302
    client.force_login(get_user_model().objects.create_user("plain", password="x-password-123"))
    assert client.get(path).status_code == 403


def test_the_retention_page_lists_policies_runs_and_a_dry_run(staff_client):
    # given
    old = memories_add(texts=["a", "b", "c"], user_id="u", agent_id="support")
    Memory.objects.filter(id__in=[m.id for m in old]).update(created_at=timezone.now() - timedelta(days=40))
    policy = retention_policy_create(
        name="support-30d", scope={"agent_id": "support"}, max_age_days=30, actor="t"
    )
    # when: a dry run, then "run now"
    dry = staff_client.get("/privacy-team/retention/", {"dry_run": str(policy.id)})
    started = staff_client.post(f"/privacy-team/retention/{policy.id}/run/", follow=True)
    # then
    assert dry.status_code == 200
    page = dry.content.decode()
    assert "support-30d" in page and 'data-field="would_delete">3<' in page
    assert Memory.objects.count() == 3  # a dry run changes nothing
    run = RetentionRun.objects.get(policy=policy)
    assert run.trigger == "manual" and run.requested_by == "dpo"
    assert "Run of “support-30d” started" in started.content.decode()
    engine.deletion_job_run(job_id=run.deletion_job_id, budget_seconds=float("inf"))
    listed = staff_client.get("/privacy-team/retention/").content.decode()
    assert "succeeded" in listed and not Memory.objects.exists()


def test_the_report_page_shows_the_year_and_offers_csv(staff_client):
    received = datetime(2025, 5, 1, tzinfo=UTC)
    canary_request(
        regulation="ccpa", received_at=received, verified_at=received + timedelta(days=3), held_count=0
    )

    page = staff_client.get("/privacy-team/reports/", {"year": 2025})
    as_csv = staff_client.get("/privacy-team/reports/", {"year": 2025, "format": "csv"})

    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-field="received">1<' in html and 'data-field="median_days">3.0<' in html
    assert as_csv.status_code == 200 and b"complied_in_whole,1" in as_csv.content


def test_the_exports_page_downloads_the_certificates_zip(staff_client):
    request = canary_request(verified_at=datetime(2026, 2, 10, tzinfo=UTC))

    response = staff_client.get(
        "/privacy-team/exports/certificates/", {"from": "2026-02-01", "to": "2026-02-28"}
    )

    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert f"certificates/{request.reference}.certificate.json" in archive.namelist()


def test_staff_lift_a_suppression_from_the_request_page(staff_client):
    request = _suppressed("subj-page")
    detail = staff_client.get(f"/privacy-team/requests/{request.pk}/").content.decode()
    assert "Lift suppression" in detail

    response = staff_client.post(f"/privacy-team/requests/{request.pk}/lift-suppression/", follow=True)

    assert "Suppression lifted" in response.content.decode()
    assert not WriteBlock.objects.filter(reference=request.reference).exists()
    assert AuditEntry.objects.get(action="request.suppression_lifted").actor == "dpo"
    assert "has been lifted" in staff_client.get(f"/privacy-team/requests/{request.pk}/").content.decode()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_lift_suppression_button_works_in_a_real_browser(live_server, browser, staff):
    request = _suppressed("subj-browser")
    page = browser.new_page()
    try:
        page.goto(f"{live_server.url}/privacy-team/requests/{request.pk}/")
        page.get_by_label("Username").fill("dpo")
        page.get_by_label("Password").fill("e2e-password-123")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("button", name="Lift suppression").click()
        page.get_by_text("Suppression lifted").wait_for(timeout=20_000)
    finally:
        page.close()
    assert not WriteBlock.objects.filter(reference=request.reference).exists()
    memories_add(texts=["back again"], user_id="subj-browser")
