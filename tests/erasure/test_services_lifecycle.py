"""The lifecycle services: every move, its side effects, and every illegal move (erasure/services/requests.py)."""

import threading

import pytest
from django.core import mail
from django.db import connection

from erasure.models import STAFF_ACTIONS, TRANSITIONS, Action, AuditEntry, ErasureRequest, State
from erasure.notices import outbox_deliver
from erasure.selectors import allowed_actions, erasure_request_by_status_token, erasure_request_list
from erasure.services import (
    ErasureInputError,
    IdentityNotVerified,
    IllegalTransition,
    erasure_request_act,
    erasure_request_approve,
    erasure_request_cancel,
    erasure_request_confirm_identity,
    erasure_request_create,
    erasure_request_extend,
    erasure_request_reject,
    erasure_request_retry,
    erasure_request_scope,
)
from memories.models import DeletionJob, WriteBlock
from memories.pseudonyms import pseudonym
from memories.services import MemoryWriteBlocked, legal_hold_place, memories_add
from tests.erasure.factories import request_in_state

pytestmark = pytest.mark.django_db


def _audit_text(request: ErasureRequest) -> str:
    return " ".join(str(e.data) for e in AuditEntry.objects.filter(request=request))


def test_create_assigns_reference_deadline_token_and_mails_the_subject():
    # when
    request, token = erasure_request_create(
        regulation="ccpa",
        user_ids=["alice-7", "alice-8", "alice-7"],
        email="alice@example.test",
        scope={"agent_id": "travel-bot"},
        suppress=True,
        channel="api",
        actor="apikey:test",
    )
    # then
    assert request.state == State.RECEIVED
    assert request.reference.startswith(f"ER-{request.received_at.year}-") and len(request.reference) == 14
    assert request.subject_user_ids == ["alice-7", "alice-8"]
    assert request.subject_pseudonyms["user_ids"] == sorted([pseudonym("alice-7"), pseudonym("alice-8")])
    assert (request.due_at - request.received_at.date()).days == 45
    assert (
        request.acknowledge_due_at is not None and request.acknowledged_at is None
    )  # until the receipt is sent
    assert token not in request.status_token_hash and len(request.status_token_hash) == 64
    assert erasure_request_by_status_token(reference=request.reference, token=token) == request
    assert erasure_request_by_status_token(reference=request.reference, token=token + "x") is None
    assert mail.outbox == []  # the receipt goes out after commit, by the notice task
    outbox_deliver()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["alice@example.test"]
    assert f"/privacy/status/{request.reference}/?token={token}" in mail.outbox[0].body
    request.refresh_from_db()
    assert request.acknowledged_at is not None
    entry = AuditEntry.objects.get(request=request)
    assert entry.action == "request.created"
    assert "alice" not in str(entry.data) and "travel-bot" not in str(entry.data)


def test_references_are_sequential_and_unique():
    first = request_in_state()
    second = request_in_state()
    assert int(second.reference[-6:]) == int(first.reference[-6:]) + 1


def test_create_without_email_sends_nothing_and_is_not_acknowledged():
    request, _ = erasure_request_create(regulation="ccpa", user_ids=["u"], channel="form", actor="form")
    assert mail.outbox == [] and request.acknowledged_at is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"regulation": "hipaa"}, "regulation"),
        ({"user_ids": []}, "user_ids"),
        ({"user_ids": ["ok", ""]}, "user_ids"),
        ({"user_ids": "alice"}, "user_ids"),
        ({"email": "not-an-address"}, "email"),
        ({"scope": {"user_id": "bob"}}, "scope"),
        ({"scope": {"metadata": "x"}}, "scope"),
        ({"channel": "fax"}, "channel"),
    ],
)
def test_create_refuses_bad_input_naming_the_field(kwargs, field):
    args = {"regulation": "gdpr", "user_ids": ["u1"], "channel": "api", "actor": "t", **kwargs}
    with pytest.raises(ErasureInputError) as exc:
        erasure_request_create(**args)
    assert exc.value.field == field
    assert not ErasureRequest.objects.exists()


def test_scope_refuses_unverified_identity():
    request = request_in_state()
    with pytest.raises(IdentityNotVerified) as exc:
        erasure_request_scope(request=request, actor="staff")
    assert exc.value.state == "received"
    assert "scope" not in exc.value.allowed_actions and "verify-identity" in exc.value.allowed_actions


def test_scope_counts_exactly_total_held_per_agent_and_per_run():
    # given
    memories_add(texts=["a1", "a2", "a3"], user_id="subj", agent_id="bot-a", run_id="r1")
    memories_add(texts=["b1"], user_id="subj", agent_id="bot-b")
    memories_add(texts=["c1"], user_id="subj-alt", run_id="r2")
    memories_add(texts=["other"], user_id="someone-else", agent_id="bot-a")
    legal_hold_place(
        scope={"user_id": "subj", "agent_id": "bot-b"}, reason="art17_3_e", note="", placed_by="t"
    )
    request = request_in_state(user_ids=["subj", "subj-alt"])
    request = erasure_request_confirm_identity(request=request, actor="staff", note="passport checked")
    # when
    request = erasure_request_scope(request=request, actor="staff")
    # then
    assert request.state == State.SCOPED and request.scoped_at is not None
    assert request.scoped_total == 5 and request.scoped_held == 1
    assert request.scoped_by_agent == {"bot-a": 3, "bot-b": 1, "": 1}
    assert request.scoped_by_run == {"r1": 3, "r2": 1, "": 1}
    assert "bot-a" not in _audit_text(request)


def test_scope_narrowed_by_agent_counts_only_that_agent():
    memories_add(texts=["a1", "a2"], user_id="subj", agent_id="bot-a")
    memories_add(texts=["b1"], user_id="subj", agent_id="bot-b")
    request = request_in_state(state=State.RECEIVED, user_ids=["subj"], scope={"agent_id": "bot-a"})
    request = erasure_request_confirm_identity(request=request, actor="staff")
    request = erasure_request_scope(request=request, actor="staff")
    assert request.scoped_total == 2 and request.scoped_by_agent == {"bot-a": 2}


def test_approve_blocks_writes_and_creates_one_erasure_job():
    memories_add(texts=["x"], user_id="subj")
    request = request_in_state(state=State.SCOPED, user_ids=["subj"])
    # when
    request = erasure_request_approve(request=request, actor="staff")
    # then
    assert request.state == State.SCOPED and request.approved_at is not None
    job = DeletionJob.objects.get(id=request.deletion_job_id)
    assert job.kind == "erasure" and job.requested_by == request.reference
    assert job.scope == {"user_id": ["subj"]}
    assert WriteBlock.objects.filter(kind="erasure", user_id_hmac=pseudonym("subj")).exists()
    with pytest.raises(MemoryWriteBlocked):
        memories_add(texts=["late"], user_id="subj")
    assert allowed_actions(request) == ["extend"]


def test_two_approves_on_stale_objects_exactly_one_wins():
    request = request_in_state(state=State.SCOPED, user_ids=["subj"])
    stale_a = ErasureRequest.objects.get(id=request.id)
    stale_b = ErasureRequest.objects.get(id=request.id)
    erasure_request_approve(request=stale_a, actor="staff-a")
    with pytest.raises(IllegalTransition) as exc:
        erasure_request_approve(request=stale_b, actor="staff-b")
    assert exc.value.state == "scoped" and "approve" not in exc.value.allowed_actions
    assert DeletionJob.objects.filter(requested_by=request.reference).count() == 1
    assert AuditEntry.objects.filter(request=request, action="request.approved").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_approves_in_threads_exactly_one_wins():
    request = request_in_state(state=State.SCOPED, user_ids=["subj"])
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def approve(actor: str) -> None:
        try:
            obj = ErasureRequest.objects.get(id=request.id)
            barrier.wait()
            erasure_request_approve(request=obj, actor=actor)
            outcomes.append("won")
        except IllegalTransition:
            outcomes.append("lost")
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(f"staff-{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["lost", "won"]
    assert DeletionJob.objects.filter(requested_by=request.reference).count() == 1


def test_reject_needs_a_drp_code_and_records_it():
    request = request_in_state()
    with pytest.raises(ErasureInputError) as exc:
        erasure_request_reject(request=request, actor="staff", reason="because")
    assert exc.value.field == "reason"
    request = erasure_request_reject(request=request, actor="staff", reason="insuf_verification", note="n")
    assert request.state == State.REJECTED and request.rejection_reason == "insuf_verification"
    assert request.rejected_at is not None and allowed_actions(request) == []


def test_cancel_only_before_deletion_started():
    request = request_in_state(state=State.SCOPED, user_ids=["subj"])
    erasure_request_approve(request=request, actor="staff")
    with pytest.raises(IllegalTransition):
        erasure_request_cancel(request=request, actor="staff")
    other = erasure_request_cancel(request=request_in_state(), actor="staff")
    assert other.state == State.CANCELLED and other.cancelled_at is not None


def test_extend_once_with_a_reason():
    request = request_in_state(regulation="gdpr")
    due = request.due_at
    with pytest.raises(ErasureInputError):
        erasure_request_extend(request=request, actor="staff", reason=" ")
    request = erasure_request_extend(request=request, actor="staff", reason="complex request")
    assert request.extended_at is not None and request.due_at > due
    assert "extend" not in allowed_actions(request)
    with pytest.raises(ErasureInputError) as exc:
        erasure_request_extend(request=request, actor="staff", reason="again")
    assert "already" in exc.value.message


def test_list_filters_state_regulation_and_overdue():
    late = request_in_state(regulation="ccpa", due_at="2020-01-01")
    request_in_state(regulation="gdpr")
    request_in_state(state=State.VERIFIED, due_at="2020-01-01")
    assert list(erasure_request_list(overdue=True)) == [late]
    assert erasure_request_list(overdue=False).count() == 2
    assert erasure_request_list(regulation="ccpa").get() == late
    assert erasure_request_list(state="verified").count() == 1


SERVICES = {
    Action.CONFIRM_IDENTITY: lambda r: erasure_request_confirm_identity(request=r, actor="s"),
    Action.SCOPE: lambda r: erasure_request_scope(request=r, actor="s"),
    Action.APPROVE: lambda r: erasure_request_approve(request=r, actor="s"),
    Action.REJECT: lambda r: erasure_request_reject(request=r, actor="s", reason="other"),
    Action.CANCEL: lambda r: erasure_request_cancel(request=r, actor="s"),
    Action.RETRY: lambda r: erasure_request_retry(request=r, actor="s"),
    Action.EXTEND: lambda r: erasure_request_extend(request=r, actor="s", reason="r"),
}


@pytest.mark.parametrize("state", [s.value for s in State])
@pytest.mark.parametrize("action", [a.value for a in STAFF_ACTIONS])
def test_every_staff_action_in_every_state_follows_the_table(action, state):
    # given: a verified-identity request in `state` (received ones still pending identity, except for scope)
    extra = {"identity_status": "verified"} if (state == State.RECEIVED and action == Action.SCOPE) else {}
    request = request_in_state(state=state, user_ids=["subj"], **extra)
    expected_ok = state in TRANSITIONS[action].sources
    if action in (Action.APPROVE, Action.REJECT, Action.CANCEL):
        expected_ok = expected_ok and request.approved_at is None
    assert (action in allowed_actions(request)) == expected_ok
    before = AuditEntry.objects.count()
    # when / then
    if expected_ok:
        result = SERVICES[action](request)
        target = TRANSITIONS[action].target
        if target is not None:
            assert result.state == target
        assert AuditEntry.objects.count() > before
    else:
        with pytest.raises(IllegalTransition) as exc:
            SERVICES[action](request)
        assert exc.value.state == state
        assert exc.value.allowed_actions == allowed_actions(request)
        assert ErasureRequest.objects.get(id=request.id).state == state
        assert AuditEntry.objects.count() == before


def test_the_api_and_the_console_offer_every_staff_action_and_the_dispatcher_runs_each():
    from erasure.api.views import ACTIONS as API_ACTIONS
    from erasure.services.requests import _STAFF_ACTION_CALLS
    from erasure.views.staff import ACTIONS as PAGE_ACTIONS

    assert set(_STAFF_ACTION_CALLS) == set(API_ACTIONS) == set(PAGE_ACTIONS) == set(STAFF_ACTIONS)
    # given: a request the subject's identity was not verified for
    request = request_in_state(state=State.RECEIVED, user_ids=["subj"])
    # when: the console's or the API's action name and cleaned input reach the dispatcher
    request = erasure_request_act(
        request=request, action="reject", actor="s", data={"reason": "insuf_verification", "note": "n"}
    )
    # then: the reject service ran
    assert request.state == State.REJECTED and request.rejection_reason == "insuf_verification"
    assert AuditEntry.objects.filter(request=request, action="request.rejected").count() == 1
