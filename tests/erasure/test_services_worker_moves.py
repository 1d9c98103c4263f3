"""The moves the workers make: job finished → deleted/failed, verification (with a final sweep), retry."""

import pytest
from django.core import mail
from django.db import IntegrityError, connection, transaction

from erasure.models import AuditEntry, ErasureRequest, State
from erasure.notices import outbox_deliver
from erasure.services import (
    IllegalTransition,
    VerificationIncomplete,
    erasure_request_approve,
    erasure_request_retry,
    erasure_request_verify,
)
from memories import engine
from memories.engine import ids_digest
from memories.models import DeletionJob, Memory, MemoryHistory, MemoryTombstone, WriteBlock
from memories.pseudonyms import pseudonym
from memories.selectors import memory_history
from memories.services import MemoryWriteBlocked, legal_hold_place, memories_add, memory_update
from tests.erasure.factories import request_in_state

pytestmark = pytest.mark.django_db


def _approved(user_ids, **kwargs) -> ErasureRequest:
    request = request_in_state(state=State.SCOPED, user_ids=user_ids, **kwargs)
    mail.outbox.clear()
    return erasure_request_approve(request=request, actor="staff")


def _run_job(request: ErasureRequest) -> None:
    engine.deletion_job_run(job_id=request.deletion_job_id, budget_seconds=float("inf"))


def test_finished_job_moves_the_request_to_deleted_with_the_jobs_counts(django_capture_on_commit_callbacks):
    # given: three memories, two of them edited (three UPDATE events between them), and an edited held one
    s1, s2, s3 = memories_add(texts=["s1", "s2", "s3"], user_id="subj", agent_id="bot")
    [kept] = memories_add(texts=["kept"], user_id="subj", agent_id="legal")
    memory_update(memory=s1, text="s1 v2")
    memory_update(memory=s1, text="s1 v3")
    memory_update(memory=s2, text="s2 v2")
    memory_update(memory=kept, text="kept v2")
    legal_hold_place(
        scope={"user_id": "subj", "agent_id": "legal"}, reason="art17_3_e", note="", placed_by="t"
    )
    request = _approved(["subj"])
    # when
    with django_capture_on_commit_callbacks() as callbacks:
        _run_job(request)
    # then
    request.refresh_from_db()
    job = DeletionJob.objects.get(id=request.deletion_job_id)
    deleted = sorted([s1.id, s2.id, s3.id])
    assert request.state == State.DELETED and request.deleted_at is not None
    assert (request.deleted_count, request.held_count) == (3, 1)
    # the purge counts the history rows deleted: the three UPDATE events (s3 had none; kept's stays)
    assert request.history_purged_count == job.history_purged_count == 3
    assert request.deleted_ids_digest == job.digest == ids_digest(deleted)
    assert not MemoryHistory.objects.filter(memory_id__in=deleted).exists()
    assert list(MemoryHistory.objects.filter(memory_id=kept.id).values_list("event", "new_memory")) == [
        ("UPDATE", "kept v2")
    ]
    # exactly one content-free DELETE event per deleted memory, from the job's one tombstone
    [tombstone] = MemoryTombstone.objects.filter(job_id=job.id)
    assert tombstone.ids == deleted
    for memory_id in deleted:
        [event] = memory_history(memory_id=memory_id)
        assert (event.event, event.old_memory, event.new_memory, event.categories) == (
            "DELETE",
            None,
            None,
            [],
        )
    assert len(callbacks) == 1  # the verify task, sent once the job's transaction commits
    assert AuditEntry.objects.filter(request=request, action="request.deleted").count() == 1


def test_verify_confirms_nothing_remains_and_pseudonymises_the_request():
    memories_add(texts=["s1", "s2"], user_id="subj", agent_id="bot", run_id="run-9")
    memories_add(texts=["kept"], user_id="subj", agent_id="legal")
    other = memories_add(texts=["not me"], user_id="other", agent_id="bot")
    legal_hold_place(
        scope={"user_id": "subj", "agent_id": "legal"}, reason="art17_3_e", note="", placed_by="t"
    )
    request = _approved(["subj"], suppress=True, scoped_by_agent={"bot": 2}, scoped_by_run={"run-9": 2})
    _run_job(request)
    # when
    request = erasure_request_verify(request_id=request.id)
    # then
    assert request.state == State.VERIFIED and request.verified_at is not None
    assert request.verification["memories_remaining"] == 0
    assert request.verification["history_text_remaining"] == 0
    assert request.verification["memories_held"] == 1
    assert "memories_memory" in request.verification["checked_tables"]
    assert Memory.objects.filter(user_id="subj", legal_hold__isnull=True).count() == 0
    assert Memory.objects.filter(id=other[0].id).exists()
    # blocks: the erasure block lifted, the suppression block (keyed hash only) placed
    assert not WriteBlock.objects.filter(kind="erasure", reference=request.reference).exists()
    assert WriteBlock.objects.get(kind="suppression").user_id_hmac == pseudonym("subj")
    with pytest.raises(MemoryWriteBlocked):
        memories_add(texts=["again"], user_id="subj")
    # the subject was told (by the notice task, after commit), then forgotten
    outbox_deliver()
    request.refresh_from_db()
    assert [m.subject for m in mail.outbox if "complete" in m.subject] == [
        f"Your erasure request {request.reference} is complete"
    ]
    assert request.notified_at
    assert request.subject_user_ids == [] and request.subject_email == "" and request.scope == {}
    assert request.scoped_by_agent == {pseudonym("bot"): 2} and request.scoped_by_run == {
        pseudonym("run-9"): 2
    }
    assert request.subject_pseudonyms["user_ids"] == [pseudonym("subj")] and request.pseudonymised_at


def test_verify_without_suppression_lets_the_user_id_be_used_again():
    memories_add(texts=["s1"], user_id="subj")
    request = _approved(["subj"], email="")
    _run_job(request)
    erasure_request_verify(request_id=request.id)
    assert not WriteBlock.objects.exists()
    assert memories_add(texts=["new life"], user_id="subj")
    outbox_deliver()
    assert [
        m.subject for m in mail.outbox if "complete" in m.subject
    ] == []  # no e-mail, no completion notice


def test_verify_sweeps_a_straggler_written_past_the_block():
    # given: the job finished, then an agent wrote straight into the table (bypassing the write block), with a
    # history row as an older app server writes it
    [s1] = memories_add(texts=["s1"], user_id="subj")
    request = _approved(["subj"])
    _run_job(request)
    straggler = Memory.objects.create(text="sneaky", hash="x", user_id="subj")
    MemoryHistory.objects.create(memory_id=straggler.id, event="ADD", new_memory="sneaky")
    # when
    request = erasure_request_verify(request_id=request.id)
    # then: the sweep's figures are added to the job's; the digest covers both jobs' ids
    assert request.state == State.VERIFIED
    assert request.verification["final_sweep_deleted"] == 1 and request.deleted_count == 2
    assert request.history_purged_count == 1  # the straggler's row; s1 was never updated
    assert request.deleted_ids_digest == ids_digest([s1.id, straggler.id])
    assert [event.event for event in memory_history(memory_id=straggler.id)] == ["DELETE"]
    assert not Memory.objects.filter(user_id="subj").exists()
    assert not MemoryHistory.objects.filter(memory_id=straggler.id, new_memory__isnull=False).exists()


def _history_written_past_the_trigger(memory_id, text: str) -> None:
    """A history row written with the database's safeguard switched off (the trigger refuses history rows for
    memories that do not exist): residue only a bug or an operator could leave."""
    with connection.cursor() as cur:
        cur.execute("ALTER TABLE memories_history DISABLE TRIGGER memories_history_flag")
    MemoryHistory.objects.create(
        memory_id=memory_id, event="UPDATE", old_memory=text, new_memory=f"{text} again"
    )
    with connection.cursor() as cur:
        cur.execute("ALTER TABLE memories_history ENABLE TRIGGER memories_history_flag")


def test_a_late_writer_cannot_put_history_text_back_for_a_deleted_memory():
    # given: the job deleted the memory
    [memory] = memories_add(texts=["s1"], user_id="subj")
    request = _approved(["subj"])
    _run_job(request)
    # when / then: a history row for it is refused by the database, and the request verifies
    with pytest.raises(IntegrityError), transaction.atomic():
        MemoryHistory.objects.create(
            memory_id=memory.id, event="UPDATE", old_memory="s1", new_memory="s1 again"
        )
    assert erasure_request_verify(request_id=request.id).state == State.VERIFIED


def test_verify_finds_history_text_left_for_a_deleted_memory_and_refuses():
    # given: the job deleted a memory that had history, then its text came back into the history
    [memory] = memories_add(texts=["s1"], user_id="subj")
    memory_update(memory=memory, text="s1 edited")
    memories_add(texts=["other history"], user_id="other")
    request = _approved(["subj"])
    _run_job(request)
    assert MemoryTombstone.objects.filter(
        job_id=request.deletion_job_id, history_ids__contains=[memory.id]
    ).exists()
    _history_written_past_the_trigger(memory.id, "s1")
    # when / then
    with pytest.raises(VerificationIncomplete):
        erasure_request_verify(request_id=request.id)
    request.refresh_from_db()
    assert request.state == State.DELETED and request.subject_user_ids == ["subj"]


def test_the_jobs_tombstones_hold_the_deleted_ids_and_the_digest_covers_them():
    mine = memories_add(texts=["s1", "s2"], user_id="subj")
    request = _approved(["subj"])
    _run_job(request)
    [batch] = MemoryTombstone.objects.filter(job_id=request.deletion_job_id)
    assert batch.ids == sorted(m.id for m in mine)
    request = erasure_request_verify(request_id=request.id)
    assert request.deleted_ids_digest == ids_digest([m.id for m in mine])


def test_verify_refuses_a_request_that_is_not_deleted():
    request = request_in_state(state=State.SCOPED)
    with pytest.raises(IllegalTransition):
        erasure_request_verify(request_id=request.id)


def test_failed_job_fails_the_request_and_retry_resumes_it():
    memories_add(texts=["s1", "s2"], user_id="subj")
    request = _approved(["subj"])
    # when: the job exhausts its retries
    engine.deletion_job_fail(job_id=request.deletion_job_id, error="OperationalError")
    request.refresh_from_db()
    # then
    assert request.state == State.FAILED and request.failure_reason == "OperationalError"
    assert WriteBlock.objects.filter(kind="erasure").exists()  # the subject stays frozen
    # when: staff retries
    request = erasure_request_retry(request=request, actor="staff")
    # then: back to scoped, approval kept, the same job pending again
    assert request.state == State.SCOPED and request.approved_at is not None
    job = DeletionJob.objects.get(id=request.deletion_job_id)
    assert job.status == "PENDING"
    _run_job(request)
    request.refresh_from_db()
    assert request.state == State.DELETED and request.deleted_count == 2


def test_retry_after_a_failed_verification_goes_back_to_deleted(django_capture_on_commit_callbacks):
    memories_add(texts=["s1"], user_id="subj")
    request = _approved(["subj"])
    _run_job(request)
    ErasureRequest.objects.filter(id=request.id).update(state=State.FAILED, failure_reason="verification")
    request.refresh_from_db()
    with django_capture_on_commit_callbacks() as callbacks:
        request = erasure_request_retry(request=request, actor="staff")
    assert request.state == State.DELETED and len(callbacks) == 1


def test_a_job_ending_outside_a_worker_task_leaves_the_verification_to_the_task(
    monkeypatch, django_capture_on_commit_callbacks
):
    # (inside the deletion task it runs there: tests/e2e/test_erasure_flow.py and test_faults.py, real worker)
    from erasure import tasks

    sent: list[str] = []
    monkeypatch.setattr(tasks.erasure_request_verify_task, "delay", sent.append)
    # given: an approved request
    memories_add(texts=["s1"], user_id="subj")
    request = _approved(["subj"])
    # when: its job ends in this process, outside any task, and the transaction commits
    with django_capture_on_commit_callbacks(execute=True):
        _run_job(request)
    # then: the request waits in `deleted` for the verification task, which was sent
    request.refresh_from_db()
    assert request.state == State.DELETED and sent == [str(request.id)]


def test_starting_the_verification_of_a_verified_request_sends_nothing(
    monkeypatch, django_capture_on_commit_callbacks
):
    from erasure import tasks
    from erasure.services import verification_start

    sent: list[str] = []
    monkeypatch.setattr(tasks.erasure_request_verify_task, "delay", sent.append)
    memories_add(texts=["s1"], user_id="subj")
    request = _approved(["subj"])
    _run_job(request)
    with django_capture_on_commit_callbacks(execute=True):
        verification_start(str(request.id), here=True)
    request.refresh_from_db()
    assert request.state == State.VERIFIED and sent == []
    # a second start cannot finish there (an illegal move): nothing is sent either
    with django_capture_on_commit_callbacks(execute=True):
        verification_start(str(request.id), here=True)
    assert sent == []


def test_inline_verification_that_finds_residue_hands_over_to_the_task(
    monkeypatch, django_capture_on_commit_callbacks
):
    from erasure import tasks
    from erasure.services import verification_start

    sent: list[str] = []
    monkeypatch.setattr(tasks.erasure_request_verify_task, "delay", sent.append)
    [memory] = memories_add(texts=["s1"], user_id="subj")
    memory_update(memory=memory, text="s1 edited")
    request = _approved(["subj"])
    _run_job(request)
    _history_written_past_the_trigger(memory.id, "s1")
    with django_capture_on_commit_callbacks(execute=True):
        verification_start(str(request.id), here=True)
    request.refresh_from_db()
    assert request.state == State.DELETED and sent == [str(request.id)]
