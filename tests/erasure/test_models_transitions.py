"""The table of moves (erasure/models.py TRANSITIONS): the guards, the retry move and "running" it defines."""

import pytest

from erasure.models import CLOSED_STATES, TRANSITIONS, Action, ErasureRequest, State
from erasure.services import IllegalTransition, erasure_request_approve, erasure_request_cancel
from tests.erasure.factories import request_in_state

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("state", "approved", "running"),
    [
        (State.RECEIVED, False, False),
        (State.SCOPED, False, False),
        (State.SCOPED, True, True),
        (State.DELETED, True, True),
        (State.FAILED, True, False),
        (State.VERIFIED, True, False),
        (State.CANCELLED, False, False),
        (State.REJECTED, False, False),
    ],
)
def test_a_request_is_running_from_approval_until_verified_or_failed(state, approved, running):
    request = request_in_state(state=state)
    if approved and request.approved_at is None:
        ErasureRequest.objects.filter(id=request.id).update(approved_at=request.received_at)
        request.refresh_from_db()
    assert request.is_running is running


def test_retry_of_a_failed_deletion_is_a_move_of_the_table_back_to_scoped():
    assert TRANSITIONS[Action.RETRY].sources == {State.FAILED}
    assert TRANSITIONS[Action.RETRY].target == State.SCOPED


def test_guard_lookups_are_checked_on_the_instance_and_by_the_compare_and_set():
    # given: a scoped request, approved behind the back of a stale copy
    request = request_in_state(state=State.SCOPED, user_ids=["subj"])
    stale = ErasureRequest.objects.get(id=request.id)
    erasure_request_approve(request=request, actor="staff")
    # then: the fresh instance no longer offers cancel; the stale one does, but the UPDATE's guard refuses
    request.refresh_from_db()
    assert not request.move_allowed(Action.CANCEL) and stale.move_allowed(Action.CANCEL)
    with pytest.raises(IllegalTransition) as exc:
        erasure_request_cancel(request=stale, actor="staff")
    assert exc.value.state == State.SCOPED and "cancel" not in exc.value.allowed_actions
    assert ErasureRequest.objects.get(id=request.id).cancelled_at is None


def test_the_closed_states_are_those_no_move_starts_from():
    assert CLOSED_STATES == {State.VERIFIED, State.REJECTED, State.CANCELLED}
