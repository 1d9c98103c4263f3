"""Legal holds as rules through an erasure: a memory written after the hold is kept and counted exactly in the
scoping, the job and the certificate; a hold lifted while another covers the same memories releases none of them."""

from erasure.certificate import certificate_build, certificate_is_authentic
from erasure.models import ErasureRequest, State
from erasure.services import (
    erasure_request_approve,
    erasure_request_confirm_identity,
    erasure_request_create,
    erasure_request_scope,
    erasure_request_verify,
    legal_hold_create,
    legal_hold_release,
)
from memories import engine
from memories.ids import uuid7
from memories.models import DeletionJob, Memory
from memories.services import memories_add

SUBJECT = "hold-canary-subject-7312"
EMAIL = "hold.canary.7312@example.test"


def test_held_memories_written_after_the_hold_are_counted_exactly_in_scoping_job_and_certificate(
    db, django_capture_on_commit_callbacks
):
    # given: two overlapping holds on the subject's "legal" memories, the wider one lifted; memories written after
    # the holds (one by a path that knows nothing of holds), and a request scoped then approved
    memories_add(texts=[f"fact {i}" for i in range(6)], user_id=SUBJECT, agent_id="bot")
    memories_add(texts=["contract"], user_id=SUBJECT, agent_id="legal", run_id="case-1")
    wide = legal_hold_create(scope={"user_id": SUBJECT}, reason="art17_3_e", actor="staff:1")
    legal_hold_create(scope={"user_id": SUBJECT, "agent_id": "legal"}, reason="art17_3_b", actor="staff:1")
    memories_add(texts=["amendment"], user_id=SUBJECT, agent_id="legal", run_id="case-2")
    Memory.objects.create(id=uuid7(), text="annex", hash="h", user_id=SUBJECT, agent_id="legal")
    _hold, released = legal_hold_release(hold=wide, actor="staff:1")
    request, _token = erasure_request_create(
        regulation="gdpr", user_ids=[SUBJECT], email=EMAIL, channel="api", actor="apikey:staff"
    )
    erasure_request_confirm_identity(request=request, actor="apikey:staff", note="checked")
    erasure_request_scope(request=request, actor="apikey:staff")
    memories_add(texts=["late fact"], user_id=SUBJECT, agent_id="bot")
    memories_add(texts=["late exhibit"], user_id=SUBJECT, agent_id="legal")
    erasure_request_approve(request=request, actor="apikey:staff")

    # when: the job runs and the request is verified
    with django_capture_on_commit_callbacks():
        engine.deletion_job_run(job_id=request.deletion_job_id, budget_seconds=float("inf"))
    erasure_request_verify(request_id=request.id)

    # then: the lift released only what the other hold does not cover; scoping counted 3 held of 9; the job erased
    # the 7 others and kept 4 (the late exhibit too); the certificate says so
    request = ErasureRequest.objects.get(id=request.id)
    job = DeletionJob.objects.get(id=request.deletion_job_id)
    assert released == 6
    assert request.state == State.VERIFIED
    assert (request.scoped_total, request.scoped_held) == (9, 3)
    assert (job.deleted_count, job.held_count) == (7, 4)
    assert Memory.objects.filter(user_id=SUBJECT).count() == 4
    assert not Memory.objects.filter(user_id=SUBJECT).exclude(agent_id="legal").exists()
    built = certificate_build(request=request)
    assert certificate_is_authentic(built)
    counts = built["certificate"]["counts"]
    assert (counts["scoped"], counts["scoped_held"], counts["deleted"], counts["held"]) == (9, 3, 7, 4)
