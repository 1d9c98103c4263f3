"""The legal holds page: what each hold matches (subject identifiers as pseudonyms) and keeps now, and a lift that
first says what it releases."""

import pytest
from django.contrib.auth import get_user_model

from erasure.models import AuditEntry, HoldRelease, State
from erasure.services import (
    erasure_request_approve,
    erasure_request_confirm_identity,
    erasure_request_create,
    erasure_request_scope,
    erasure_request_verify,
    legal_hold_create,
)
from memories import engine
from memories.models import DeletionJob, LegalHold, Memory
from memories.pseudonyms import pseudonym
from memories.services import memories_add

SUBJECT = "holds-page-subject-5521"


@pytest.fixture
def staff_client(client, db):
    staff = get_user_model().objects.create_user("dpo", password="pw-for-tests-only", is_staff=True)
    client.force_login(staff)
    return client


def test_the_holds_page_shows_each_holds_criteria_and_what_it_keeps_now(staff_client):
    # given: a hold on the subject's "legal" memories, and one more written after it
    memories_add(texts=["a", "b"], user_id=SUBJECT, agent_id="legal")
    memories_add(texts=["c"], user_id=SUBJECT, agent_id="bot")
    legal_hold_create(scope={"user_id": SUBJECT, "agent_id": "legal"}, reason="art17_3_e", actor="staff:1")
    memories_add(texts=["d"], user_id=SUBJECT, agent_id="legal")

    # when
    html = staff_client.get("/privacy-team/holds/").content.decode()

    # then: the agent in clear, the subject as a pseudonym only, and the 3 memories the hold keeps now
    assert "legal" in html and pseudonym(SUBJECT)[:10] in html and SUBJECT not in html
    assert '<td data-label="Keeps now" class="num">3</td>' in html


def test_lifting_a_hold_first_says_what_it_releases_then_lifts_it(staff_client):
    # given: two overlapping holds
    memories_add(texts=["a", "b"], user_id=SUBJECT, agent_id="legal")
    memories_add(texts=["c", "d", "e"], user_id=SUBJECT, agent_id="bot")
    wide = legal_hold_create(scope={"user_id": SUBJECT}, reason="art17_3_e", actor="staff:1")
    legal_hold_create(scope={"user_id": SUBJECT, "agent_id": "legal"}, reason="art17_3_b", actor="staff:1")

    # when: the lift link is followed
    page = staff_client.get(f"/privacy-team/holds/{wide.pk}/lift/")

    # then: a confirmation saying what is released and what another hold keeps; nothing lifted yet
    html = page.content.decode()
    assert page.status_code == 200 and "Lift the hold" in html
    assert "releases <strong>3 memories</strong>" in html and "2 stay kept by another active hold" in html
    assert LegalHold.objects.get(pk=wide.pk).is_active

    # when: confirmed
    response = staff_client.post(f"/privacy-team/holds/{wide.pk}/lift/", follow=True)

    # then
    assert "Hold lifted: 3 memories can be erased again." in response.content.decode()
    wide.refresh_from_db()
    assert not wide.is_active and wide.scope is None
    assert Memory.objects.filter(legal_hold__isnull=False).count() == 2


def test_a_lift_that_releases_memories_an_erasure_kept_offers_to_erase_them_under_that_request(
    staff_client, django_capture_on_commit_callbacks
):
    # given: a verified erasure that kept the subject's "legal" memories under a hold; another subject's request
    memories_add(texts=["a", "b", "c"], user_id=SUBJECT, agent_id="bot")
    kept = memories_add(texts=["contract", "annex"], user_id=SUBJECT, agent_id="legal")
    hold = legal_hold_create(scope={"agent_id": "legal"}, reason="art17_3_e", actor="staff:1")
    [bystander] = memories_add(texts=["other"], user_id="someone-else-9", agent_id="legal")
    request, _token = erasure_request_create(
        regulation="gdpr", user_ids=[SUBJECT], email="", channel="api", actor="apikey:staff"
    )
    erasure_request_confirm_identity(request=request, actor="apikey:staff", note="checked")
    erasure_request_scope(request=request, actor="apikey:staff")
    erasure_request_approve(request=request, actor="apikey:staff")
    with django_capture_on_commit_callbacks():
        engine.deletion_job_run(job_id=request.deletion_job_id, budget_seconds=float("inf"))
    erasure_request_verify(request_id=request.id)
    request.refresh_from_db()
    assert request.state == State.VERIFIED and request.held_count == 2

    # when: the hold is lifted from the console
    response = staff_client.post(f"/privacy-team/holds/{hold.pk}/lift/", follow=True)

    # then: the console offers to erase the two memories under the request (not the bystander's)
    html = response.content.decode()
    assert f"Erase under {request.reference}" in html and "2 memories released" in html
    release = HoldRelease.objects.get()
    assert release.request_id == request.id and sorted(release.memory_ids) == sorted(m.id for m in kept)

    # when: staff erases them, and the workers run the job
    with django_capture_on_commit_callbacks():
        staff_client.post(f"/privacy-team/holds/releases/{release.pk}/erase/")
    release.refresh_from_db()
    engine.deletion_job_run(job_id=release.deletion_job_id, budget_seconds=float("inf"))

    # then: they are gone, the bystander's memory stays, and the request's audit trail says what happened
    assert not Memory.objects.filter(user_id=SUBJECT).exists()
    assert Memory.objects.filter(id=bystander.id).exists()
    job = DeletionJob.objects.get(id=release.deletion_job_id)
    assert job.status == DeletionJob.Status.SUCCEEDED and job.deleted_count == 2
    actions = list(AuditEntry.objects.filter(request=request).values_list("action", flat=True))
    assert actions[-3:] == [
        "request.hold_lifted",
        "request.released_memories_erased",
        "certificate.supplement_issued",
    ]
    assert "Erase under" not in staff_client.get("/privacy-team/holds/").content.decode()
