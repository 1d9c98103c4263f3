"""The compliance pages in a real headless Chromium: a retention policy's dry run and "run now" (a real worker runs
it; the run's record appears with its counts), and the CCPA report for a year with its CSV link."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from erasure.models import RetentionRun, State
from erasure.retention import retention_policy_create
from memories.models import Memory
from memories.services import memories_add
from tests.conftest import wait_for
from tests.e2e.test_ui_browser import TIMEOUT_MS, _shot, _sign_in
from tests.erasure.factories import request_in_state

pytestmark = [pytest.mark.browser]


def _signed_in(browser, live_server, path):
    get_user_model().objects.create_user("dpo", password="e2e-password-123", is_staff=True)
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    _sign_in(page, f"{live_server.url}{path}")
    return context, page


def test_a_retention_policy_is_previewed_then_run_from_the_browser(live_server, browser, celery_worker):
    # given: three support memories past 30 days, one recent, one of another agent
    old = memories_add(texts=["a", "b", "c"], user_id="ui-ret", agent_id="support")
    Memory.objects.filter(id__in=[m.id for m in old]).update(created_at=timezone.now() - timedelta(days=40))
    memories_add(texts=["recent"], user_id="ui-ret", agent_id="support")
    memories_add(texts=["other"], user_id="ui-ret", agent_id="sales")
    policy = retention_policy_create(
        name="support-30d", scope={"agent_id": "support"}, max_age_days=30, actor="t"
    )
    context, page = _signed_in(browser, live_server, "/privacy-team/retention/")
    page.get_by_role("heading", name="Memory retention").wait_for()

    # when: the dry run
    page.get_by_role("link", name="Dry run of support-30d").click()

    # then: it says what a run would erase, and changes nothing
    page.get_by_role("heading", name="Dry run: support-30d").wait_for()
    assert page.locator('[data-field="would_delete"]').inner_text() == "3"
    assert Memory.objects.count() == 5
    _shot(page, "retention-dry-run")

    # when: run now, and a real worker runs the job
    page.get_by_role("button", name="Run now support-30d").click()
    page.get_by_text("Run of “support-30d” started").wait_for()
    wait_for(
        lambda: RetentionRun.objects.filter(policy=policy, status="succeeded").exists(),
        message="the retention run to succeed",
    )
    page.reload()

    # then: the run's record with its counts; exactly the old support memories are gone
    row = page.locator("tr", has_text="support-30d").filter(has_text="succeeded")
    row.wait_for()
    assert row.locator('[data-label="Erased"]').inner_text() == "3"
    assert sorted(Memory.objects.values_list("text", flat=True)) == ["other", "recent"]
    context.close()


def test_the_ccpa_report_for_a_year_in_the_browser(live_server, browser):
    # given: two CCPA requests received in 2026, one verified after 4 days, one rejected after 2, and a GDPR one
    received = datetime(2026, 2, 2, 9, tzinfo=UTC)
    request_in_state(state=State.VERIFIED, regulation="ccpa", received_at=received,
                     verified_at=received + timedelta(days=4))  # fmt: skip
    request_in_state(state=State.REJECTED, regulation="ccpa", received_at=received, rejection_reason="other",
                     rejected_at=received + timedelta(days=2))  # fmt: skip
    request_in_state(state=State.VERIFIED, regulation="gdpr", received_at=received)
    context, page = _signed_in(browser, live_server, "/privacy-team/reports/?year=2026")

    # then
    page.get_by_role("heading", name="CCPA deletion requests, 2026").wait_for()
    figures = {
        field: page.locator(f'[data-field="{field}"]').inner_text()
        for field in ("received", "complied_in_whole", "complied_in_part", "denied", "median_days")
    }
    assert figures == {
        "received": "2",
        "complied_in_whole": "1",
        "complied_in_part": "0",
        "denied": "1",
        "median_days": "3.0",
    }
    assert page.get_by_role("link", name="Download CSV").get_attribute("href") == "?year=2026&format=csv"
    _shot(page, "ccpa-report")
    context.close()
