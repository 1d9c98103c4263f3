"""The subject proves control of the e-mail (a signed expiring link confirmed by a button press, or a short code)
and which user ids are theirs; scoping waits for both. Forged, expired and reused links verify nothing."""

import re

import pytest
from django.core import mail, signing
from django.test import override_settings
from django.utils import timezone

from erasure.identity import LINK_SALT, MAX_CODE_ATTEMPTS
from erasure.identity_models import IdentityChallenge
from erasure.models import ErasureRequest, IdentityStatus, State
from erasure.notices import outbox_deliver
from erasure.services import IdentityNotVerified, erasure_request_confirm_identity, erasure_request_scope
from erasure.throttling import subject_form_throttle_reset as form_throttle_reset
from memories.pseudonyms import pseudonym

pytestmark = pytest.mark.django_db

FORM = {
    "regulation": "gdpr",
    "user_ids": "id-proof-1\nproof@example.test",
    "email": "proof@example.test",
    "consent": "on",
}


@pytest.fixture(autouse=True)
def _fresh_throttle():
    form_throttle_reset("127.0.0.1")
    yield
    form_throttle_reset("127.0.0.1")


def resolver(email: str) -> list[str]:
    """A company's account system: knows one user id per e-mail (IDENTITY_RESOLVER in the tests)."""
    return [f"acct-{email.split('@')[0]}"]


def _submit(client, **fields) -> tuple[ErasureRequest, str, str]:
    """Submits the form; returns the request, the link and the code of the verification mail."""
    mail.outbox.clear()
    assert client.post("/privacy/request/", {**FORM, **fields}).status_code == 302
    erasure = ErasureRequest.objects.order_by("-received_at").first()
    outbox_deliver()
    (verification,) = [m for m in mail.outbox if "confirm" in m.subject.lower()]
    link = re.search(r"https?://\S+/privacy/verify/\S+/", verification.body).group(0)
    code = re.search(r"^(\d{6})$", verification.body, re.M).group(1)
    return erasure, link.split("://", 1)[1].split("/", 1)[1], code


def test_the_form_mails_a_link_whose_get_shows_a_button_and_only_the_post_verifies(client):
    erasure, path, _code = _submit(client)
    assert erasure.identity_status == IdentityStatus.PENDING
    # when: a mail scanner pre-fetches the link
    page = client.get("/" + path)
    # then: a page with a Confirm button, nothing verified
    assert page.status_code == 200 and b"Confirm" in page.content and b'<form method="post"' in page.content
    erasure.refresh_from_db()
    assert erasure.identity_status == IdentityStatus.PENDING
    # when: the subject presses the button
    done = client.post("/" + path)
    # then
    assert done.status_code == 200 and b"your e-mail address is confirmed" in done.content
    erasure.refresh_from_db()
    assert erasure.identity_status == IdentityStatus.VERIFIED and erasure.identity_verified_at
    assert erasure.identity_verified_by == "subject (email-link)"
    # the id equal to the verified e-mail is confirmed, the other one only claimed
    assert erasure.subject_confirmed_pseudonyms == [pseudonym("proof@example.test")]


def test_a_reused_a_forged_and_an_expired_link_verify_nothing_and_say_so(client):
    erasure, path, _code = _submit(client)
    assert client.post("/" + path).status_code == 200
    reused = client.post("/" + path)
    assert reused.status_code == 410 and b"already used" in reused.content
    # forged: a token for a real challenge, signed with another key
    challenge = IdentityChallenge.objects.get(request=erasure)
    with override_settings(SECRET_KEY="not-our-secret-key-" * 3):
        forged = signing.dumps(str(challenge.id), salt=LINK_SALT)
    page = client.post(f"/privacy/verify/{forged}/")
    assert page.status_code == 404 and b"not valid" in page.content
    # expired: a new request whose challenge lapsed
    other, other_path, _ = _submit(client, email="late@example.test", user_ids="late-1")
    IdentityChallenge.objects.filter(request=other).update(expires_at=timezone.now())
    for response in (client.get("/" + other_path), client.post("/" + other_path)):
        assert response.status_code == 410 and b"expired" in response.content
    with override_settings(IDENTITY_LINK_MAX_AGE_SECONDS=-1):  # the signature's own age check
        assert b"expired" in client.post("/" + other_path).content
    other.refresh_from_db()
    assert other.identity_status == IdentityStatus.PENDING


def test_the_code_verifies_and_wrong_codes_lock_the_challenge_after_the_limit(client):
    erasure, _path, code = _submit(client)
    wrong = "000000" if code != "000000" else "111111"
    for attempt in range(MAX_CODE_ATTEMPTS):
        response = client.post("/privacy/verify/", {"reference": erasure.reference, "code": wrong})
        assert response.status_code == (429 if attempt == MAX_CODE_ATTEMPTS - 1 else 400)
    # locked: even the right code is refused now
    locked = client.post("/privacy/verify/", {"reference": erasure.reference, "code": code})
    assert locked.status_code == 429 and b"Too many wrong codes" in locked.content
    erasure.refresh_from_db()
    assert erasure.identity_status == IdentityStatus.PENDING
    # a new mail (from the status page) brings a new challenge and code; the old link is superseded
    other, _p, other_code = _submit(client, email="code@example.test", user_ids="code-1")
    ok = client.post("/privacy/verify/", {"reference": other.reference, "code": other_code})
    assert ok.status_code == 200
    other.refresh_from_db()
    assert other.identity_status == IdentityStatus.VERIFIED


def test_scoping_needs_the_subjects_ids_confirmed_and_staff_confirm_them_at_verify_identity(client):
    erasure, path, _code = _submit(client)
    client.post("/" + path)
    erasure.refresh_from_db()
    # when / then: `id-proof-1` is only claimed
    with pytest.raises(IdentityNotVerified, match="user ids must be confirmed"):
        erasure_request_scope(request=erasure, actor="dpo")
    # when: staff confirm (and attach one more id)
    erasure = erasure_request_confirm_identity(
        request=erasure, actor="dpo", note="account", user_ids=["id-proof-2"]
    )
    # then
    assert erasure.subject_user_ids == ["id-proof-1", "id-proof-2", "proof@example.test"]
    assert len(erasure.subject_confirmed_pseudonyms) == 3
    assert erasure.subject_pseudonyms["user_ids"] == sorted(pseudonym(u) for u in erasure.subject_user_ids)
    assert erasure_request_scope(request=erasure, actor="dpo").state == State.SCOPED


@override_settings(IDENTITY_RESOLVER="tests.erasure.test_identity.resolver")
def test_the_resolver_confirms_the_ids_the_account_system_knows_for_the_verified_email(client):
    erasure, path, _code = _submit(client, user_ids="acct-proof\nsomeone-elses-id")
    client.post("/" + path)
    erasure.refresh_from_db()
    confirmed = set(erasure.subject_confirmed_pseudonyms)
    assert pseudonym("acct-proof") in confirmed and pseudonym("someone-elses-id") not in confirmed


def test_the_api_takes_an_email_only_subject_and_verify_identity_attaches_user_ids(staff_api):
    created = staff_api.post(
        "/api/v1/erasure-requests/",
        {"regulation": "ccpa", "subject": {"email": "api@example.test"}},
        format="json",
    )
    assert created.status_code == 201
    url = f"/api/v1/erasure-requests/{created.json()['id']}/"
    assert staff_api.post(url + "scope/").status_code == 409  # identity pending
    verified = staff_api.post(
        url + "verify-identity/", {"note": "by phone", "user_ids": ["api-u1"]}, format="json"
    )
    assert verified.status_code == 200
    subject = verified.json()["subject"]
    assert subject["user_ids"] == subject["user_ids_confirmed"] == ["api-u1"]
    assert staff_api.post(url + "scope/").status_code == 200
    assert staff_api.post(
        "/api/v1/erasure-requests/", {"regulation": "ccpa", "subject": {}}, format="json"
    ).json()["subject"]["user_ids"]
    listed = staff_api.get("/api/v1/erasure-requests/?channel=api").json()["results"]
    assert [r["id"] for r in listed] == [created.json()["id"]]
    assert staff_api.get("/api/v1/erasure-requests/?channel=drp").json()["results"] == []


def test_a_duplicate_submission_is_folded_into_the_first_request(client):
    first, _path, _code = _submit(client)
    client.post("/privacy/request/", {**FORM, "user_ids": "proof@example.test\nid-proof-1"})
    assert ErasureRequest.objects.count() == 1
    client.post("/privacy/request/", {**FORM, "user_ids": "id-proof-1"})  # other ids: a new request
    assert ErasureRequest.objects.count() == 2 and ErasureRequest.objects.filter(pk=first.pk).exists()


def test_the_form_offers_suppression(client):
    erasure, _path, _code = _submit(client, suppress="on")
    assert erasure.suppress is True
