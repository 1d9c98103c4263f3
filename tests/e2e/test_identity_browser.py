"""In a real browser: the subject submits the form, gets the verification mail, opens the link (which verifies
nothing by itself), presses Confirm, and the request is verified; the used link then says so plainly."""

import re
from urllib.parse import urlsplit

import pytest
from django.core import mail

from erasure.models import ErasureRequest, IdentityStatus
from erasure.notices import outbox_deliver
from erasure.throttling import subject_form_throttle_reset as form_throttle_reset

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
TIMEOUT_MS = 20_000


def test_form_mail_link_button_verifies_the_subjects_email_in_a_real_browser(live_server, browser):
    # given
    form_throttle_reset("127.0.0.1")
    mail.outbox.clear()
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    # when: the subject submits the form
    page.goto(f"{live_server.url}/privacy/request/")
    page.get_by_role("radio", name=re.compile("GDPR Art. 17")).check()
    page.get_by_label("Your user id(s) in the product").fill("browser-subject@example.test")
    page.get_by_label("Your e-mail address").fill("browser-subject@example.test")
    page.get_by_label(re.compile("^After the erasure, refuse")).check()
    page.get_by_label(re.compile("^I confirm")).check()
    page.get_by_role("button", name="Send my erasure request").click()
    page.get_by_role("heading", name="We have received your request").wait_for()
    erasure = ErasureRequest.objects.get()
    assert erasure.identity_status == IdentityStatus.PENDING and erasure.suppress
    # and the verification mail goes out (what the notice task does after commit)
    outbox_deliver()
    (verification,) = [m for m in mail.outbox if "confirm" in m.subject.lower()]
    link = re.search(r"https?://\S+/privacy/verify/\S+/", verification.body).group(0)
    path = urlsplit(link).path
    # when: the subject opens the link
    page.goto(live_server.url + path)
    page.get_by_role("heading", name="Confirm your erasure request").wait_for()
    erasure.refresh_from_db()
    assert erasure.identity_status == IdentityStatus.PENDING  # opening the link alone verifies nothing
    page.get_by_role("button", name="Confirm").click()
    # then
    page.get_by_role("heading", name=re.compile("your e-mail address is confirmed")).wait_for()
    erasure.refresh_from_db()
    assert erasure.identity_status == IdentityStatus.VERIFIED
    assert (
        erasure.subject_user_ids == ["browser-subject@example.test"] and erasure.subject_confirmed_pseudonyms
    )
    # and the link cannot be used twice
    page.goto(live_server.url + path)
    page.get_by_role("heading", name="This link did not confirm anything").wait_for()
    assert "already used" in page.locator("#verify-failure").inner_text()
    context.close()
