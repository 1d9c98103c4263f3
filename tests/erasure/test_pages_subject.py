"""The data subject's pages: the request form (validation, honeypot, throttling, CSRF) and the status page."""

import re

import pytest
from django.core import mail
from django.test import Client, override_settings
from django.urls import reverse

from erasure.models import ErasureRequest, State
from erasure.notices import outbox_deliver
from erasure.services import MAX_USER_IDS, erasure_request_create
from erasure.throttling import subject_form_throttle_reset

pytestmark = pytest.mark.django_db

FORM_URL = "/privacy/request/"
VALID = {
    "regulation": "gdpr",
    "user_ids": "subject-form-1\n  subject-form-2  \n\nsubject-form-1\n",
    "email": "someone@example.test",
    "consent": "on",
    "website": "",
}


@pytest.fixture(autouse=True)
def _fresh_throttle():
    subject_form_throttle_reset("127.0.0.1")
    yield
    subject_form_throttle_reset("127.0.0.1")


def _status_link_from_mail() -> str:
    outbox_deliver()  # what the notice task does after commit
    receipts = [m for m in mail.outbox if "We received" in m.subject]
    assert len(receipts) == 1
    match = re.search(r"https?://\S+/privacy/status/\S+", receipts[0].body)
    assert match, receipts[0].body
    return match.group(0)


def test_form_page_explains_the_regulations_and_labels_every_field(client):
    response = client.get(FORM_URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert "csrfmiddlewaretoken" in html
    assert "within one month" in html and "45 days" in html
    for field in ("id_user_ids", "id_email", "id_consent"):
        assert f'for="{field}"' in html
    # everything local: no CDN host or URL (the letters "cdn" alone can occur in the random CSRF token)
    assert not re.search(r"//cdn|cdn[.-]|unpkg|jsdelivr", html.lower()) and "https://" not in html


def test_submitting_the_form_creates_a_request_mails_the_link_and_confirms_without_echoing_ids(client):
    # when
    response = client.post(FORM_URL, VALID)
    # then
    assert response.status_code == 302
    assert response["Location"] == reverse("erasure_pages:subject-submitted")
    erasure = ErasureRequest.objects.get()
    assert erasure.channel == "form" and erasure.created_by == "form"
    assert erasure.subject_user_ids == ["subject-form-1", "subject-form-2"]
    assert erasure.subject_email == "someone@example.test"
    assert erasure.state == State.RECEIVED
    link = _status_link_from_mail()
    assert f"/privacy/status/{erasure.reference}/?token=" in link
    confirmation = client.get(response["Location"])
    html = confirmation.content.decode()
    assert confirmation.status_code == 200
    assert erasure.reference in html
    assert erasure.due_at.strftime("%-d %B %Y") in html
    assert "subject-form-1" not in html and "subject-form-1" not in response["Location"]


def test_invalid_submission_shows_errors_next_to_the_fields_and_creates_nothing(client):
    response = client.post(FORM_URL, {"regulation": "", "user_ids": "  \n ", "email": "not-an-address"})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_user_ids_error"' in html and "Enter at least one user id" in html
    assert 'id="id_email_error"' in html and "valid email" in html
    assert 'id="id_consent_error"' in html and "Please confirm" in html
    assert 'id="id_regulation_error"' in html
    assert 'aria-invalid="true"' in html
    assert ErasureRequest.objects.count() == 0 and mail.outbox == []


def test_too_many_user_ids_are_refused(client):
    response = client.post(
        FORM_URL, {**VALID, "user_ids": "\n".join(f"u{i}" for i in range(MAX_USER_IDS + 1))}
    )
    assert response.status_code == 400
    assert f"at most {MAX_USER_IDS} user ids" in response.content.decode()


def test_a_filled_honeypot_looks_like_success_but_creates_and_sends_nothing(client):
    response = client.post(FORM_URL, {**VALID, "website": "http://spam.example"})
    assert response.status_code == 200
    assert "We have received your request" in response.content.decode()
    assert ErasureRequest.objects.count() == 0 and mail.outbox == []


@override_settings(SUBJECT_FORM_RATE="2/hour")
def test_submissions_over_the_rate_are_throttled_per_address(client):
    assert client.post(FORM_URL, VALID).status_code == 302
    assert client.post(FORM_URL, {**VALID, "email": "bad"}).status_code == 400  # invalid ones count too
    # when
    response = client.post(FORM_URL, VALID)
    # then
    assert response.status_code == 429
    assert "Too many requests" in response.content.decode()
    assert 1 <= int(response["Retry-After"]) <= 3600
    assert ErasureRequest.objects.count() == 1
    other = client.post(FORM_URL, VALID, REMOTE_ADDR="10.9.8.7")
    assert other.status_code == 302  # another address has its own budget
    subject_form_throttle_reset("10.9.8.7")


def _rest_framework(**overrides):
    from django.conf import settings

    return {**settings.REST_FRAMEWORK, **overrides}


@override_settings(SUBJECT_FORM_RATE="1/hour")
def test_without_trusted_proxies_a_forwarded_for_header_does_not_buy_a_fresh_budget(client):
    # given: no trusted proxy (the default), one submission from this address
    assert client.post(FORM_URL, VALID, HTTP_X_FORWARDED_FOR="10.0.0.1").status_code == 302
    # when: the same address claims to forward for another client
    response = client.post(FORM_URL, VALID, HTTP_X_FORWARDED_FOR="10.0.0.2")
    # then
    assert response.status_code == 429


@override_settings(SUBJECT_FORM_RATE="1/hour")
def test_behind_one_trusted_proxy_clients_are_told_apart_by_the_address_it_forwards(client):
    with override_settings(REST_FRAMEWORK=_rest_framework(NUM_PROXIES=1)):
        # given: one client behind the proxy used its budget
        assert client.post(FORM_URL, VALID, HTTP_X_FORWARDED_FOR="198.51.100.7").status_code == 302
        assert client.post(FORM_URL, VALID, HTTP_X_FORWARDED_FOR="198.51.100.7").status_code == 429
        # when / then: another client behind the same proxy has its own; a forged first hop changes nothing
        assert client.post(FORM_URL, VALID, HTTP_X_FORWARDED_FOR="198.51.100.8").status_code == 302
        forged = client.post(FORM_URL, VALID, HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.7")
        assert forged.status_code == 429
    for address in ("198.51.100.7", "198.51.100.8"):
        subject_form_throttle_reset(address)


def test_form_post_without_csrf_token_is_refused():
    client = Client(enforce_csrf_checks=True)
    response = client.post(FORM_URL, VALID)
    assert response.status_code == 403
    assert ErasureRequest.objects.count() == 0


def _created(**kwargs):
    mail.outbox.clear()
    erasure, token = erasure_request_create(
        regulation=kwargs.pop("regulation", "gdpr"),
        user_ids=["status-subject"],
        email="s@example.test",
        channel="form",
        actor="form",
    )
    if kwargs:
        ErasureRequest.objects.filter(pk=erasure.pk).update(**kwargs)
        erasure.refresh_from_db()
    return erasure, token


def test_status_page_with_the_right_token_shows_the_state_in_plain_words(client):
    erasure, token = _created()
    response = client.get(f"/privacy/status/{erasure.reference}/?token={token}")
    assert response.status_code == 200
    html = response.content.decode()
    # same-origin: the secret link never leaves the site, and the page's own POST forms keep their Origin
    assert '<meta name="referrer" content="same-origin">' in html
    assert response["Referrer-Policy"] == "same-origin"
    assert "no-store" in response["Cache-Control"] or "no-cache" in response["Cache-Control"]
    assert "Please confirm your e-mail address" in html  # a form request waits for the subject's proof
    assert erasure.due_at.strftime("%-d %B %Y") in html and "days left" in html
    assert "status-subject" not in html and "s@example.test" not in html


@pytest.mark.parametrize("query", ["", "?token=", "?token=wrong-token", "?token={token}x"])
def test_status_page_without_the_right_token_is_not_found(client, query):
    erasure, token = _created()
    response = client.get(f"/privacy/status/{erasure.reference}/" + query.format(token=token))
    assert response.status_code == 404
    assert erasure.reference not in response.content.decode()


def test_status_page_of_an_unknown_reference_answers_exactly_like_a_wrong_token(client):
    erasure, token = _created()
    unknown = client.get(f"/privacy/status/ER-1999-999999/?token={token}")
    wrong = client.get(f"/privacy/status/{erasure.reference}/?token=nope")
    assert unknown.status_code == wrong.status_code == 404
    assert unknown.content == wrong.content


def test_status_page_of_a_rejected_request_gives_the_plain_reason(client):
    erasure, token = _created(
        state=State.REJECTED, rejection_reason="insuf_verification", rejection_note="staff only"
    )
    html = client.get(f"/privacy/status/{erasure.reference}/?token={token}").content.decode()
    assert "We could not carry out your request" in html
    assert "could not verify your identity" in html
    assert "staff only" not in html  # the internal note stays internal


def test_status_page_of_a_verified_request_gives_the_date(client):
    from django.utils import timezone

    when = timezone.now()
    erasure, token = _created(
        state=State.VERIFIED, identity_verified_at=when, approved_at=when, deleted_at=when, verified_at=when
    )
    html = client.get(f"/privacy/status/{erasure.reference}/?token={token}").content.decode()
    assert "Your data has been erased" in html
    assert "Erasure confirmed" in html and when.strftime("%-d %B %Y") in html
    assert "days left" not in html
