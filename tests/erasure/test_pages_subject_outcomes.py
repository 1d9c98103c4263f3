"""The subject's pages tell the truth in every outcome and never answer with a bare error page."""

import pytest
from django.test import override_settings
from django.utils import timezone

from erasure.models import ErasureRequest, State
from erasure.services import erasure_request_create
from erasure.throttling import subject_form_throttle_reset as form_throttle_reset
from memories.models import LegalHold

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttle():
    form_throttle_reset("127.0.0.1")
    yield
    form_throttle_reset("127.0.0.1")


def _created(regulation: str = "gdpr", **fields):
    erasure, token = erasure_request_create(
        regulation=regulation, user_ids=["o-1"], email="o@example.test", channel="api", actor="t"
    )
    ErasureRequest.objects.filter(pk=erasure.pk).update(**fields)
    return erasure, token


def _status(client, erasure, token) -> str:
    return client.get(f"/privacy/status/{erasure.reference}/?token={token}").content.decode()


def test_a_partial_erasure_says_how_many_items_were_kept_and_on_which_ground(client):
    LegalHold.objects.create(reason=LegalHold.Reason.LEGAL_CLAIMS, scope_pseudonymised={}, placed_by="dpo",
                             placed_at=timezone.now())  # fmt: skip
    now = timezone.now()
    erasure, token = _created(
        state=State.VERIFIED, verified_at=now, deleted_at=now, deleted_count=7, held_count=2
    )
    html = _status(client, erasure, token)
    assert "except what we must keep" in html and "We erased 7 items" in html
    assert "2 items are kept under a legal hold" in html and "Art. 17(3)(e)" in html
    assert "none of it remains" not in html


def test_a_rejected_gdpr_request_gives_the_reason_and_the_right_to_complain(client):
    erasure, token = _created(state=State.REJECTED, rejected_at=timezone.now(), rejection_reason="no_match")
    html = _status(client, erasure, token)
    assert "We found no data" in html and "supervisory authority" in html
    ccpa, ccpa_token = _created(
        "ccpa", state=State.REJECTED, rejected_at=timezone.now(), rejection_reason="no_match"
    )
    assert "supervisory authority" not in _status(client, ccpa, ccpa_token)


def test_a_wrong_or_broken_status_link_gets_a_helpful_page_of_our_own(client):
    erasure, token = _created()
    response = client.get(f"/privacy/status/{erasure.reference}/?token={token[:-3]}")
    html = response.content.decode()
    assert response.status_code == 404 and "We could not find this request" in html
    assert "exactly as it appears in our e-mail" in html and "Not Found</h1>" not in html


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=2000)
def test_an_oversized_post_gets_a_friendly_page(client):
    response = client.post(
        "/privacy/request/", {"regulation": "gdpr", "user_ids": "x" * 5000, "email": "a@b.c"}
    )
    assert response.status_code == 413
    assert "larger than this form accepts" in response.content.decode()
    assert not ErasureRequest.objects.exists()


def test_a_malformed_post_gets_a_friendly_page(client):
    response = client.generic(
        "POST", "/privacy/request/", b"--x\r\nbroken", content_type="multipart/form-data; boundary="
    )
    assert response.status_code == 400 and "could not be read" in response.content.decode()


def test_a_form_request_waiting_for_the_subject_offers_a_new_link(client):
    erasure, token = erasure_request_create(
        regulation="gdpr", user_ids=["w-1"], email="w@example.test", channel="form", actor="form"
    )
    html = _status(client, erasure, token)
    assert "Please confirm your e-mail address" in html and "Send me a new link and code" in html
    response = client.post(f"/privacy/status/{erasure.reference}/resend/", {"token": token})
    assert response.status_code == 200 and "new confirmation e-mail" in response.content.decode()
    assert erasure.identity_challenges.filter(superseded_at__isnull=True).count() == 1
    assert erasure.identity_challenges.count() == 2
    assert client.post(f"/privacy/status/{erasure.reference}/resend/", {"token": "x"}).status_code == 404
