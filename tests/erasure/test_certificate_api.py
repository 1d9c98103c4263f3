"""GET /api/v1/erasure-requests/{id}/certificate/ — staff only, 409 before verified, JSON or ?format=pdf."""

import uuid

import pytest
from rest_framework.test import APIClient

from erasure.certificate import certificate_is_authentic
from erasure.models import AuditEntry
from tests.erasure.factories import canary_request


def url(request_id) -> str:
    return f"/api/v1/erasure-requests/{request_id}/certificate/"


def test_anonymous_is_401_and_a_plain_key_is_403(db, api):
    request = canary_request()
    assert APIClient().get(url(request.id)).status_code == 401
    response = api.get(url(request.id))
    assert response.status_code == 403


def test_unknown_request_is_404(staff_api):
    assert staff_api.get(url(uuid.uuid4())).status_code == 404


@pytest.mark.parametrize("state", ["received", "scoped", "deleted"])
def test_before_verified_is_409_with_the_state(staff_api, state):
    request = canary_request(state=state)

    response = staff_api.get(url(request.id))

    assert response.status_code == 409
    assert response.json()["state"] == state
    assert "verified" in response.json()["error"]
    assert isinstance(response.json()["allowed_actions"], list)


def test_verified_request_gets_a_signed_json_certificate(staff_api):
    request = canary_request()

    response = staff_api.get(url(request.id))

    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    doc = response.json()
    assert doc["certificate"]["reference"] == request.reference
    assert certificate_is_authentic(doc)
    issued = AuditEntry.objects.filter(request=request, action="certificate.issued").get()
    assert issued.actor == "apikey:staff-test" and issued.data["key_id"] == doc["key_id"]


def test_format_pdf_answers_a_pdf(staff_api):
    request = canary_request()

    response = staff_api.get(url(request.id), {"format": "pdf"})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert request.reference in response["Content-Disposition"]


def test_an_unknown_format_is_400_naming_the_field(staff_api):
    response = staff_api.get(url(canary_request().id), {"format": "xml"})
    assert response.status_code == 400 and "format" in response.json()


def test_without_a_signing_key_the_answer_is_503_naming_the_setting(staff_api, settings, tmp_path):
    from erasure.signing import signing_key

    # given: production-like settings with no key configured and no development key on disk
    settings.CERTIFICATE_SIGNING_KEY = ""
    settings.CERTIFICATE_SIGNING_KEY_FILE = ""
    settings.CERTIFICATE_SIGNING_KEY_AUTOGENERATE = False
    settings.DEBUG = False
    settings.VAR_DIR = tmp_path
    signing_key.cache_clear()
    erasure = canary_request()
    try:
        # when
        response = staff_api.get(url(erasure.id))
    finally:
        signing_key.cache_clear()
    # then
    assert response.status_code == 503
    assert "CERTIFICATE_SIGNING_KEY" in response.json()["error"]
    assert not AuditEntry.objects.filter(action="certificate.issued").exists()
