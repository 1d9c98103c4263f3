"""A certificate is issued once, when the request is verified, and stored: every download gives the same bytes;
the service publishes the keys that verify it."""

import hashlib
import json
from io import StringIO

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from erasure import signing
from erasure.certificate import certificate_check_trusted
from erasure.models import AuditEntry, Certificate, State
from erasure.services import erasure_request_approve, erasure_request_verify
from memories import engine
from memories.services import memories_add
from tests.erasure.factories import request_in_state as make_request

pytestmark = pytest.mark.django_db


def url(request_id) -> str:
    return f"/api/v1/erasure-requests/{request_id}/certificate/"


def _verified():
    memories_add(texts=["a", "b"], user_id="subj-cert", agent_id="bot")
    request = erasure_request_approve(
        request=make_request(state=State.SCOPED, user_ids=["subj-cert"]), actor="staff"
    )
    engine.deletion_job_run(job_id=request.deletion_job_id, budget_seconds=float("inf"))
    return erasure_request_verify(request_id=request.id)


def test_verification_issues_and_stores_the_certificate_once():
    # when
    request = _verified()
    # then: stored in the verification's transaction, signed with the service key, audited once
    stored = Certificate.objects.get(request=request)
    document = json.loads(stored.document)
    assert document["certificate"]["reference"] == request.reference
    assert document["certificate"]["counts"]["deleted"] == 2
    assert (
        stored.key_id == signing.key_id()
        and stored.sha256 == hashlib.sha256(stored.document.encode()).hexdigest()
    )
    assert certificate_check_trusted(document, signing.trusted_public_keys()) == request.reference
    issued = AuditEntry.objects.filter(request=request, action="certificate.issued").get()
    assert issued.actor == "worker" and issued.data["sha256"] == stored.sha256


def test_every_download_returns_the_same_signed_bytes(staff_api):
    # given
    request = _verified()
    stored = Certificate.objects.get(request=request)
    # when: downloaded twice as JSON and twice as PDF, some time and audit entries apart
    first = staff_api.get(url(request.id))
    second = staff_api.get(url(request.id))
    pdf_1 = staff_api.get(url(request.id), {"format": "pdf"})
    pdf_2 = staff_api.get(url(request.id), {"format": "pdf"})
    # then
    assert first.status_code == second.status_code == 200
    assert first.content == second.content == stored.document.encode()
    assert pdf_1.content.startswith(b"%PDF") and pdf_1.content == pdf_2.content
    assert AuditEntry.objects.filter(request=request, action="certificate.issued").count() == 1
    downloads = AuditEntry.objects.filter(request=request, action="certificate.downloaded")
    assert downloads.count() == 4 and {e.data["sha256"] for e in downloads} == {stored.sha256}


def test_the_service_publishes_its_signing_keys_without_auth(db):
    response = APIClient().get("/.well-known/erasure-signing-key")
    pem = APIClient().get("/.well-known/erasure-signing-key.pem")

    assert response.status_code == 200
    body = response.json()
    assert body["algorithm"] == "Ed25519" and body["current_key_id"] == signing.key_id()
    assert body["keys"][0]["current"] and body["keys"][0]["public_key"] == signing.public_key_pem()
    assert pem.status_code == 200 and list(signing.load_public_keys(pem.content)) == [signing.key_id()]


def test_export_public_key_prints_every_published_key(db, settings):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    old = Ed25519PrivateKey.generate().public_key()
    settings.CERTIFICATE_SIGNING_KEY_PREVIOUS = signing.public_key_pem(old)
    out, err = StringIO(), StringIO()

    call_command("export_public_key", "--all", stdout=out, stderr=err)

    assert set(signing.load_public_keys(out.getvalue())) == {signing.key_id(), signing.key_id(old)}
    assert "(current)" in err.getvalue()
