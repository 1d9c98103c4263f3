"""The console for a team in a real headless Chromium against a live server: a privacy-team member searches the
queue by reference, sorts it by due date, ticks requests and extends them with one reason, assigns them, filters
"assigned to me", reads the dashboard, and sees the approval page's exact words. No worker: nothing is erased.
Screenshots of the queue and the dashboard go to docs/screenshots/ with UPDATE_SCREENSHOTS=1 (as in
test_ui_browser.py)."""

import datetime
import re
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from erasure.models import AuditEntry, ErasureRequest, State
from tests.e2e.test_ui_browser import TIMEOUT_MS, _shot
from tests.erasure.factories import request_in_state

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _queue_refs(page) -> list[str]:
    return [link.inner_text() for link in page.locator("table.queue tbody th a").all()]


def test_a_team_member_works_the_queue_and_the_dashboard_in_a_real_browser(live_server, browser):
    # given: open requests with different due dates, two of one subject, one scoped with a hold, a staff account
    today = timezone.localdate()
    soon = request_in_state(
        user_ids=["customer-000123"], email="alice@example.com", due_at=today + datetime.timedelta(days=2)
    )
    later = request_in_state(
        user_ids=["customer-000987"], email="bob@example.com", due_at=today + datetime.timedelta(days=25)
    )
    again = request_in_state(
        user_ids=["customer-000123"], email="alice@example.com", regulation="ccpa",
        due_at=today + datetime.timedelta(days=40),
    )  # fmt: skip
    overdue = request_in_state(
        user_ids=["customer-000555"], email="carol@example.com", due_at=today - datetime.timedelta(days=3)
    )
    scoped = request_in_state(
        user_ids=["customer-000777"], email="dan@example.com", state=State.SCOPED, scoped_total=215,
        scoped_held=13, scoped_by_agent={"support-bot": 200, "": 15},
    )  # fmt: skip
    request_in_state(
        user_ids=["customer-000321"], email="fay@example.com", state=State.FAILED, approved_at=timezone.now(),
        due_at=today + datetime.timedelta(days=5),
    )  # fmt: skip
    request_in_state(
        user_ids=["customer-000999"], email="erin@example.com", state=State.VERIFIED,
        verified_at=timezone.now(), due_at=today,
    )  # fmt: skip
    get_user_model().objects.create_user("dpo", password="e2e-password-123", is_staff=True)
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    external: list[str] = []
    page.on(
        "request",
        lambda req: (
            external.append(req.url) if urlsplit(req.url).netloc != urlsplit(live_server.url).netloc else None
        ),
    )

    # when: the team member signs in
    page.goto(f"{live_server.url}/privacy-team/")
    page.get_by_label("Username").fill("dpo")
    page.get_by_label("Password").fill("e2e-password-123")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Erasure requests").wait_for()

    # then: subjects masked, the two requests of one subject flagged
    table = page.locator("table.queue")
    assert "cu***23" in table.inner_text() and "a***@example.com" in table.inner_text()
    assert "customer-000123" not in page.content() and "alice@example.com" not in page.content()
    assert page.locator(".dup").count() == 2
    assert f"duplicate of {again.reference}" in table.inner_text()

    # when: searching by a fragment of a reference
    page.get_by_label("Reference").fill(later.reference[-6:])
    page.get_by_role("button", name="Filter").click()
    # then: only that request
    page.wait_for_url(re.compile(r"q="))
    assert _queue_refs(page) == [later.reference]

    # when: cleared, then sorted by due date with the column header
    page.get_by_role("link", name="Clear").click()
    page.get_by_role("link", name=re.compile("^Due")).click()
    page.wait_for_url(re.compile(r"sort=due"))
    refs = _queue_refs(page)
    # then: open requests soonest due first (the overdue one leads), closed ones after them
    assert refs.index(overdue.reference) < refs.index(soon.reference) < refs.index(later.reference)
    assert refs.index(later.reference) < refs.index(again.reference)
    _shot(page, "console-queue")

    # then: the bulk form shows only what the chosen action needs (static/js/queue.js), with a "select all" box
    assert page.get_by_label("Reason for the extension").is_hidden()
    page.get_by_label("Select all requests on this page").check()
    assert all(box.is_checked() for box in page.locator('input[name="ids"]').all())
    page.get_by_label("Select all requests on this page").uncheck()

    # when: two requests ticked and extended with one reason
    page.get_by_label(f"Select {soon.reference}").check()
    page.get_by_label(f"Select {later.reference}").check()
    page.get_by_label("Action").select_option("extend")
    page.get_by_label("Reason for the extension").fill("many requests this month")
    page.get_by_role("button", name="Apply to ticked requests").click()
    # then: each request's result, both extended through the service (audited)
    page.get_by_role("heading", name=re.compile("2 done")).wait_for()
    results = page.locator("table.bulk-results").inner_text()
    assert soon.reference in results and later.reference in results and "due date extended" in results
    assert AuditEntry.objects.filter(action="request.extended", actor="dpo").count() == 2
    assert ErasureRequest.objects.get(pk=soon.pk).extension_reason == "many requests this month"

    # when: the same two assigned to me, then "assigned to me"
    page.get_by_role("link", name="Back to the requests").click()
    page.get_by_label(f"Select {soon.reference}").check()
    page.get_by_label(f"Select {overdue.reference}").check()
    page.get_by_label("Action").select_option("assign")
    page.get_by_label("Assign to").select_option(label="dpo")
    page.get_by_role("button", name="Apply to ticked requests").click()
    page.get_by_role("heading", name=re.compile("2 done")).wait_for()
    page.get_by_role("link", name="Back to the requests").click()
    page.get_by_label("Assigned to me").check()
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"mine=on"))
    # then
    assert sorted(_queue_refs(page)) == sorted([soon.reference, overdue.reference])

    # when: the dashboard
    page.get_by_role("link", name="Dashboard").click()
    page.get_by_role("heading", name="This week").wait_for()
    # then: the figures, drawn as server-side SVG bars
    stats = page.locator(".dashboard-stats").inner_text()
    assert "6\nopen requests" in stats and "1\ndue within 7 days" in stats and "1\noverdue" in stats
    assert "2\nassigned to me" in stats
    assert "100%" in stats  # the verified request was answered on its due date
    assert page.locator("svg.bar rect.bar-fill").count() >= 5
    _shot(page, "console-dashboard")

    # when: the approval page of the scoped request
    page.goto(f"{live_server.url}/privacy-team/requests/{scoped.pk}/approve/")
    # then: the exact words
    assert page.locator(".approve-summary").inner_text() == "202 will be erased, 13 kept under a hold."
    assert "215" not in page.locator("main").inner_text()

    assert errors == [] and external == []
