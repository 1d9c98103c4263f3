"""Suppression does what the request says: a request narrowed to one agent suppresses only that agent's writes;
staff can lift a suppression (audited), through the API and the console."""

import pytest

from erasure.models import AuditEntry, State
from erasure.services import erasure_request_approve, erasure_request_verify
from memories import engine
from memories.models import Memory, WriteBlock
from memories.services import MemoryWriteBlocked, memories_add, memory_update
from tests.erasure.factories import request_in_state as make_request

pytestmark = pytest.mark.django_db


def _verified(user_ids, **kwargs):
    request = erasure_request_approve(
        request=make_request(state=State.SCOPED, user_ids=user_ids, **kwargs), actor="staff"
    )
    engine.deletion_job_run(job_id=request.deletion_job_id, budget_seconds=float("inf"))
    return erasure_request_verify(request_id=request.id)


def test_a_request_narrowed_to_one_agent_suppresses_only_that_agents_writes():
    # given: the subject's memories with two agents; the erasure is narrowed to one of them
    memories_add(texts=["coach 1"], user_id="subj-s", agent_id="coach")
    [planner] = memories_add(texts=["planner 1"], user_id="subj-s", agent_id="planner")
    _verified(["subj-s"], scope={"agent_id": "coach"}, suppress=True)
    # then: the erased agent's writes are refused, the other agent's (and the subject without agent) go on
    with pytest.raises(MemoryWriteBlocked):
        memories_add(texts=["coach 2"], user_id="subj-s", agent_id="coach")
    memories_add(texts=["planner 2"], user_id="subj-s", agent_id="planner")
    memories_add(texts=["no agent"], user_id="subj-s")
    memory_update(memory=planner, text="planner 1 edited")
    assert sorted(Memory.objects.filter(user_id="subj-s").values_list("text", flat=True)) == [
        "no agent",
        "planner 1 edited",
        "planner 2",
    ]
    block = WriteBlock.objects.get(kind="suppression")
    assert "coach" not in str(block.scope_pseudonymised)  # keyed hashes only


def test_a_suppression_narrowed_by_metadata_refuses_only_writes_with_that_metadata():
    memories_add(texts=["alpha"], user_id="subj-m", metadata={"project": "alpha"})
    _verified(["subj-m"], scope={"metadata": {"project": "alpha"}}, suppress=True)

    with pytest.raises(MemoryWriteBlocked):
        memories_add(texts=["alpha 2"], user_id="subj-m", metadata={"project": "alpha", "x": 1})
    memories_add(texts=["beta"], user_id="subj-m", metadata={"project": "beta"})
    memories_add(texts=["none"], user_id="subj-m")


def test_an_unnarrowed_suppression_refuses_every_write_of_the_subject():
    _verified(["subj-all"], suppress=True)
    for agent in (None, "coach"):
        with pytest.raises(MemoryWriteBlocked):
            memories_add(texts=["again"], user_id="subj-all", agent_id=agent)


def test_staff_lift_a_suppression_through_the_api_and_it_is_audited(staff_api):
    # given
    request = _verified(["subj-lift"], suppress=True)
    url = f"/api/v1/erasure-requests/{request.id}/lift-suppression/"
    # when
    response = staff_api.post(url, {"note": "the subject signed up again"}, format="json")
    again = staff_api.post(url, {}, format="json")
    # then: writes accepted again; a second lift is a 409 saying why
    assert response.status_code == 200 and response.json()["blocks_lifted"] == 1
    memories_add(texts=["welcome back"], user_id="subj-lift")
    assert again.status_code == 409 and "no active suppression" in again.json()["error"]
    entry = AuditEntry.objects.get(request=request, action="request.suppression_lifted")
    assert (
        entry.actor == "apikey:staff-test" and entry.data["blocks_lifted"] == 1 and entry.data["note_given"]
    )
    assert "signed up" not in str(entry.data)


def test_a_plain_memory_key_cannot_lift_a_suppression(api):
    request = _verified(["subj-key"], suppress=True)
    response = api.post(f"/api/v1/erasure-requests/{request.id}/lift-suppression/", {}, format="json")
    assert response.status_code == 403
    assert WriteBlock.objects.filter(kind="suppression", reference=request.reference).exists()
