"""Memories a lifted hold released, erased later under a verified request: the stored certificate stays as issued, a
signed supplement (verifiable offline) records the later erasure, and the subject is told, or the notice is recorded
as unaddressed when no address is left."""

import json
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import call_command

from erasure import signing
from erasure.certificate import certificate_check_trusted
from erasure.models import AuditEntry, Certificate, CertificateSupplement, HoldRelease, State
from erasure.notices import outbox_deliver
from erasure.notices_models import DeliveryStatus, SubjectNotice
from erasure.services import (
    erasure_request_approve,
    erasure_request_confirm_identity,
    erasure_request_create,
    erasure_request_scope,
    erasure_request_verify,
    hold_release_erase,
    legal_hold_create,
    legal_hold_release,
)
from memories import engine
from memories.models import Memory
from memories.pseudonyms import pseudonym
from memories.services import memories_add

SUBJECT = "supplement-subject-8841"
EMAIL = "supplement.subject.8841@example.test"

pytestmark = pytest.mark.django_db


def _verified_with_held(capture, *, email: str):
    memories_add(texts=["a", "b"], user_id=SUBJECT, agent_id="bot")
    memories_add(texts=["contract", "annex"], user_id=SUBJECT, agent_id="legal")
    hold = legal_hold_create(scope={"agent_id": "legal"}, reason="art17_3_e", actor="staff:1")
    request, _token = erasure_request_create(
        regulation="gdpr", user_ids=[SUBJECT], email=email, channel="api", actor="apikey:staff"
    )
    erasure_request_confirm_identity(request=request, actor="apikey:staff", note="checked")
    erasure_request_scope(request=request, actor="apikey:staff")
    erasure_request_approve(request=request, actor="apikey:staff")
    with capture():
        engine.deletion_job_run(job_id=request.deletion_job_id, budget_seconds=float("inf"))
    request = erasure_request_verify(request_id=request.id)
    assert request.state == State.VERIFIED and request.held_count == 2 and request.subject_email == ""
    return request, hold


def _erase_released(capture, hold):
    legal_hold_release(hold=hold, actor="staff:1")
    release = HoldRelease.objects.get()
    with capture():
        release = hold_release_erase(release=release, actor="staff:1")
    with capture(execute=True):
        engine.deletion_job_run(job_id=release.deletion_job_id, budget_seconds=float("inf"))
    return release


def test_erasing_released_memories_adds_a_signed_supplement_and_leaves_the_certificate_as_issued(
    django_capture_on_commit_callbacks, tmp_path
):
    # given: a verified request whose certificate was stored with 2 memories kept under a hold
    request, hold = _verified_with_held(django_capture_on_commit_callbacks, email=EMAIL)
    stored = Certificate.objects.get(request=request)
    before = (stored.document, stored.sha256)

    # when: the hold is lifted and staff erase the released memories under the request
    _erase_released(django_capture_on_commit_callbacks, hold)

    # then: the certificate is unchanged; the supplement pins it and records the erasure, hold by pseudonym only
    stored.refresh_from_db()
    assert (stored.document, stored.sha256) == before
    supplement = CertificateSupplement.objects.get(request=request)
    document = json.loads(supplement.document)
    facts = document["certificate"]
    assert facts["type"] == "erasure-certificate-supplement" and facts["supplement"] == supplement.number == 1
    assert facts["supplements_certificate"] == {"sha256": stored.sha256, "key_id": stored.key_id}
    assert facts["hold"]["pseudonym"] == pseudonym(str(hold.id)) and str(hold.id) not in supplement.document
    assert facts["counts"]["released"] == facts["counts"]["deleted"] == 2
    assert facts["counts"]["remaining_at_issuance"] == 0 and SUBJECT not in supplement.document
    assert facts["deleted_ids_digest"]["sha256"] != "0" * 64 and facts["timestamps"]["deleted_at"]
    assert not Memory.objects.filter(user_id=SUBJECT).exists()
    assert certificate_check_trusted(document, signing.trusted_public_keys()) == request.reference
    issued = AuditEntry.objects.get(request=request, action="certificate.supplement_issued")
    assert issued.data["sha256"] == supplement.sha256

    # and: it verifies offline against the published key
    path, pem = tmp_path / "supplement.json", tmp_path / "keys.pem"
    path.write_text(supplement.document)
    pem.write_text(signing.public_key_pem())
    out = StringIO()
    call_command("verify_certificate", str(path), "--public-key", str(pem), stdout=out)
    assert f"certificate valid: {request.reference}" in out.getvalue()


def test_the_subject_is_told_through_the_address_sealed_at_verification(django_capture_on_commit_callbacks):
    # given: a verified request (its e-mail pseudonymised) that kept 2 memories under a hold
    request, hold = _verified_with_held(django_capture_on_commit_callbacks, email=EMAIL)
    waiting = SubjectNotice.objects.get(request=request, kind=SubjectNotice.Kind.HOLD_RELEASE)
    assert waiting.status == DeliveryStatus.WAITING
    outbox_deliver()
    mail.outbox.clear()

    # when: the released memories are erased under the request and the outbox delivered
    _erase_released(django_capture_on_commit_callbacks, hold)
    outbox_deliver()

    # then: one mail to the subject saying 2 more items were erased; the address wiped once nothing stays held
    [sent] = mail.outbox
    assert sent.to == [EMAIL] and request.reference in sent.subject
    assert "erased 2 more items" in sent.body
    waiting.refresh_from_db()
    assert waiting.status == DeliveryStatus.SENT and waiting.sealed == ""


def test_without_an_address_the_notice_is_recorded_as_unaddressed(django_capture_on_commit_callbacks):
    # given: a request made without an e-mail
    request, hold = _verified_with_held(django_capture_on_commit_callbacks, email="")
    outbox_deliver()
    mail.outbox.clear()

    # when
    _erase_released(django_capture_on_commit_callbacks, hold)
    outbox_deliver()

    # then: nothing sent, the notice recorded as unaddressed; the supplement issued all the same
    notice = SubjectNotice.objects.get(request=request, kind=SubjectNotice.Kind.HOLD_RELEASE)
    assert notice.status == DeliveryStatus.UNADDRESSED and mail.outbox == []
    assert CertificateSupplement.objects.filter(request=request).count() == 1


def test_the_holds_page_flow_ends_with_the_supplement_on_the_request_page_and_the_api(
    client, staff_api, django_capture_on_commit_callbacks
):
    # given: staff signed in; a verified request that kept memories under a hold, the hold lifted in the console
    staff = get_user_model().objects.create_user("dpo", password="pw-for-tests-only", is_staff=True)
    client.force_login(staff)
    request, hold = _verified_with_held(django_capture_on_commit_callbacks, email=EMAIL)
    client.post(f"/privacy-team/holds/{hold.pk}/lift/")
    release = HoldRelease.objects.get()

    # when: staff erase them from the holds page and the workers run the job
    with django_capture_on_commit_callbacks():
        client.post(f"/privacy-team/holds/releases/{release.pk}/erase/")
    release.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        engine.deletion_job_run(job_id=release.deletion_job_id, budget_seconds=float("inf"))

    # then: the request page links the supplement; the page and the API serve the stored bytes
    supplement = CertificateSupplement.objects.get(request=request)
    page_url = f"/privacy-team/requests/{request.pk}/certificate/supplements/1/"
    assert page_url in client.get(f"/privacy-team/requests/{request.pk}/").content.decode()
    assert client.get(page_url).content == supplement.document.encode()
    api = staff_api.get(f"/api/v1/erasure-requests/{request.pk}/certificate/supplements/1/")
    assert api.status_code == 200 and api.content == supplement.document.encode()
    missing = staff_api.get(f"/api/v1/erasure-requests/{request.pk}/certificate/supplements/2/")
    assert missing.status_code == 404 and "number" in missing.json()
