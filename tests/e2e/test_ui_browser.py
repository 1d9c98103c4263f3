"""The web pages in a real headless Chromium against a live server, with a real Celery worker doing the erasure.

A data subject submits the form and opens the secret status link from the e-mail; a privacy-team member signs in,
finds the request in the queue, verifies the identity, scopes, approves, and watches it reach `verified`.
Screenshots go to docs/screenshots/ (the pages as reviewers see them).
"""

import datetime
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.utils import timezone

from erasure.models import ErasureRequest, State
from erasure.notices import outbox_deliver
from erasure.throttling import subject_form_throttle_reset
from memories.models import Memory
from memories.services import memories_add
from tests.erasure.factories import request_in_state

pytestmark = [pytest.mark.browser, pytest.mark.worker]

# Screenshots are always taken (a page that cannot render fails the test); they replace the committed ones in
# docs/screenshots/ only with UPDATE_SCREENSHOTS=1, so a test run leaves the work tree clean.
SHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    if os.environ.get("UPDATE_SCREENSHOTS") == "1"
    else Path(settings.VAR_DIR) / "screenshots"
)
TIMEOUT_MS = 20_000


def _sign_in(page, url: str, username: str = "dpo", password: str = "e2e-password-123") -> None:
    """Opens a console page and signs in on the login form it redirects to."""
    page.goto(url)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def _shot(page, name: str) -> None:
    """A full-page screenshot, reduced to a 256-colour palette so each file stays well under 200 KB."""
    from PIL import Image

    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)
    assert path.stat().st_size < 200_000, f"{path.name} is {path.stat().st_size} bytes"


def _path_of(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


def test_subject_request_to_verified_erasure_in_a_real_browser(live_server, browser, start_worker):
    # given: the subject's memories, some other requests in the queue, a staff account, a worker
    subject_form_throttle_reset("127.0.0.1")
    memories_add(
        texts=["likes hiking", "lives near the lake"], user_id="e2e-subject", agent_id="coach", run_id="r1"
    )
    memories_add(texts=["prefers tea"], user_id="e2e-subject", agent_id="support")
    memories_add(texts=["someone else"], user_id="bystander", agent_id="coach")
    request_in_state(
        user_ids=["older-1"], regulation="ccpa", due_at=timezone.localdate() - datetime.timedelta(days=2)
    )
    request_in_state(user_ids=["older-2"], state=State.SCOPED)
    request_in_state(user_ids=["older-3"], state=State.VERIFIED, verified_at=timezone.now())
    get_user_model().objects.create_user("dpo", password="e2e-password-123", is_staff=True)
    mail.outbox.clear()
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    failed: list[str] = []
    page.on(
        "response",
        lambda r: (
            failed.append(f"{r.status} {r.request.method} {urlsplit(r.url).path}")
            if r.status >= 400
            else None
        ),
    )
    requested: list[str] = []
    page.on("request", lambda req: requested.append(req.url))

    # when: the subject submits the form, first with a mistake
    page.goto(f"{live_server.url}/privacy/request/")
    _shot(page, "subject-form")
    page.get_by_label("Your user id(s) in the product").fill("e2e-subject")
    page.get_by_label("Your e-mail address").fill("subject@")
    page.get_by_role("button", name="Send my erasure request").click()
    assert page.locator("#id_email_error").is_visible() and page.locator("#id_consent_error").is_visible()
    assert page.locator("#id_email").get_attribute("aria-invalid") == "true"
    assert page.get_by_label("Your user id(s) in the product").input_value().strip() == "e2e-subject"
    _shot(page, "subject-form-errors")
    page.get_by_role("radio", name=re.compile("GDPR Art. 17")).check()
    page.get_by_label("Your e-mail address").fill("subject@example.test")
    page.get_by_label(re.compile("^I confirm")).check()
    page.get_by_role("button", name="Send my erasure request").click()

    # then: a confirmation with the reference and the deadline, and the secret link by e-mail
    page.get_by_role("heading", name="We have received your request").wait_for()
    erasure = ErasureRequest.objects.get(subject_user_ids=["e2e-subject"])
    assert erasure.reference in page.content() and "e2e-subject" not in page.url
    outbox_deliver()  # what the notice task does after commit (before the worker starts: its outbox is its own)
    receipt = next(
        m for m in mail.outbox if m.subject == f"We received your erasure request {erasure.reference}"
    )
    link = re.search(r"https?://\S+/privacy/status/\S+", receipt.body).group(0)
    worker = start_worker("ui")
    page.goto(live_server.url + _path_of(link))
    page.get_by_role("heading", name="Please confirm your e-mail address").wait_for()
    assert page.locator('meta[name="referrer"]').get_attribute("content") == "same-origin"
    _shot(page, "status-received")

    # when: a privacy-team member signs in and works the request
    page.goto(f"{live_server.url}/privacy-team/")
    page.get_by_label("Username").fill("dpo")
    page.get_by_label("Password").fill("e2e-password-123")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Erasure requests").wait_for()
    assert page.locator("tr.is-overdue").count() == 1
    _shot(page, "queue")
    page.get_by_role("link", name=erasure.reference).click()
    page.get_by_role("heading", name=erasure.reference).wait_for()
    assert page.get_by_text("e2e-subject").is_visible()
    page.get_by_label("How was the identity verified?").fill("account e-mail confirmed")
    page.get_by_role("button", name="Mark identity verified").click()
    page.get_by_text("Identity marked as verified.").wait_for()
    page.get_by_role("button", name="Compute scope").click()
    page.get_by_text("Scope computed.").wait_for()

    # then: exact counts per agent
    assert page.locator(".stat-value").first.inner_text() == "3"
    by_agent = page.get_by_role("table", name="Per agent")
    assert "coach" in by_agent.inner_text() and "support" in by_agent.inner_text()
    _shot(page, "detail-scoped")

    # when: approved (with the confirm step), the worker erases and verifies
    page.get_by_role("link", name="Approve erasure…").click()
    page.get_by_label(re.compile("I have checked the scope")).check()
    page.get_by_role("button", name="Approve and erase").click()

    # then: the page follows the job (local JS poll) until the request is verified
    page.locator(".page-head .badge-verified").wait_for(timeout=60_000)
    assert page.locator("#progress progress").get_attribute("value") == "100"
    assert Memory.objects.filter(user_id="e2e-subject").count() == 0
    assert Memory.objects.filter(user_id="bystander").count() == 1
    _shot(page, "detail-verified")

    # and the subject's status page says so, with the date
    page.goto(live_server.url + _path_of(link))
    page.get_by_role("heading", name="Your data has been erased").wait_for()
    assert page.get_by_text("Erasure confirmed").first.is_visible()
    _shot(page, "status-verified")

    # and a legal hold can be placed from the holds page
    page.goto(f"{live_server.url}/privacy-team/holds/")
    page.get_by_label("User id").fill("bystander")
    page.get_by_label("Legal ground (GDPR Art. 17(3))").select_option("art17_3_e")
    page.get_by_label("Note").fill("matter 2026-17")
    page.get_by_role("button", name="Place hold").click()
    page.get_by_text("Hold placed on 1 memory.").wait_for()
    _shot(page, "legal-holds")

    local = urlsplit(live_server.url).netloc
    assert all(urlsplit(url).netloc == local for url in requested), "only local resources are loaded"
    assert errors == [], errors
    assert failed == ["400 POST /privacy/request/"], failed  # only the deliberate mistake
    context.close()
    assert "Traceback" not in worker.log()
