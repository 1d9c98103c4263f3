"""Honest counts under races: when another deletion erases the subject's memories between scoping and the
request's own job, the request still reaches `verified`, and its verification, certificate and completion mail say
who erased them instead of "0 items"."""

from django.core import mail

from erasure.certificate import certificate_build
from erasure.models import ErasureRequest, State
from erasure.notices import outbox_deliver
from erasure.services import (
    erasure_request_approve,
    erasure_request_confirm_identity,
    erasure_request_create,
    erasure_request_scope,
    erasure_request_verify,
)
from memories import engine
from memories.models import DeletionJob
from memories.services import memories_add

SUBJECT = "race-subject-7311"


def _scoped_request(email: str = "race.7311@example.test") -> ErasureRequest:
    request, _token = erasure_request_create(
        regulation="gdpr", user_ids=[SUBJECT], email=email, channel="api", actor="apikey:staff"
    )
    erasure_request_confirm_identity(request=request, actor="apikey:staff", note="checked")
    return erasure_request_scope(request=request, actor="apikey:staff")


def _run_to_verified(request: ErasureRequest, capture) -> ErasureRequest:
    with capture(execute=False):
        erasure_request_approve(request=request, actor="apikey:staff")
    request.refresh_from_db()
    with capture(execute=False):
        engine.deletion_job_run(job_id=request.deletion_job_id, budget_seconds=float("inf"))
    erasure_request_verify(request_id=request.id)
    return ErasureRequest.objects.get(id=request.id)


def test_a_plain_delete_during_the_erasure_is_named_in_the_certificate_and_the_mail(
    db, django_capture_on_commit_callbacks
):
    # given: 50 memories scoped by a request, then erased by a plain DELETE /v1/memories/?user_id= job
    memories_add(texts=[f"fact {i}" for i in range(50)], user_id=SUBJECT)
    request = _scoped_request()
    plain = engine.deletion_job_create(
        kind=DeletionJob.Kind.FILTER, scope={"user_id": SUBJECT}, requested_by="api-key:7", enqueue=False
    )
    engine.deletion_job_run(job_id=plain.id, budget_seconds=float("inf"))
    mail.outbox.clear()

    # when: the request's own job finds nothing left and the verification runs
    request = _run_to_verified(request, django_capture_on_commit_callbacks)

    # then: verified, with the 50 attributed to the plain delete's job in the signed facts and the mail
    assert request.state == State.VERIFIED and request.deleted_count == 0
    cert = certificate_build(request=request)["certificate"]
    elsewhere = cert["verification"]["erased_elsewhere"]
    assert elsewhere["scoped_deletable"] == 50 and elsewhere["deleted_elsewhere"] == 50
    assert elsewhere["deleted_by_this_request"] == 0 and elsewhere["not_attributed"] == 0
    assert elsewhere["by_other_jobs"] == [
        {
            "job": str(plain.id),
            "kind": "filter",
            "requested_by": "api-key:7",
            "status": "SUCCEEDED",
            "deleted": 50,
        }
    ]
    outbox_deliver()  # notices go out after commit, through the outbox
    [completion] = [m for m in mail.outbox if "complete" in m.subject]
    assert "50 of the 50 items" in completion.body and "deletion through the memory API" in completion.body
    assert SUBJECT not in str(cert)


def test_a_second_request_for_the_same_subject_names_the_first(db, django_capture_on_commit_callbacks):
    # given: two requests scoped for the same subject; the first erases everything
    memories_add(texts=[f"fact {i}" for i in range(12)], user_id=SUBJECT)
    first, second = _scoped_request("a.7311@example.test"), _scoped_request("b.7311@example.test")
    first = _run_to_verified(first, django_capture_on_commit_callbacks)
    outbox_deliver()
    mail.outbox.clear()

    # when
    second = _run_to_verified(second, django_capture_on_commit_callbacks)

    # then: the first reports its own 12, the second says the first erased them
    assert "erased_elsewhere" not in first.verification and first.deleted_count == 12
    elsewhere = second.verification["erased_elsewhere"]
    assert elsewhere["deleted_elsewhere"] == 12
    assert [job["requested_by"] for job in elsewhere["by_other_jobs"]] == [first.reference]
    outbox_deliver()  # notices go out after commit, through the outbox
    [completion] = [m for m in mail.outbox if "complete" in m.subject]
    assert f"another erasure request ({first.reference})" in completion.body


def test_an_undisturbed_erasure_reports_no_attribution(db, django_capture_on_commit_callbacks):
    memories_add(texts=["a", "b"], user_id=SUBJECT)
    request = _run_to_verified(_scoped_request(), django_capture_on_commit_callbacks)
    assert request.deleted_count == 2 and "erased_elsewhere" not in request.verification
