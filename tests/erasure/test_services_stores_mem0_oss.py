"""The request's verification on a connected Mem0 OSS store counts the history rows of the ids its job recorded
(Mem0's history table has no user column): a row left for an erased id fails the request, naming the store."""

import sqlite3

import pytest

from erasure.models import State
from erasure.services import VerificationIncomplete, erasure_request_verify
from erasure.tasks import erasure_request_verify_task
from memories.models import Store, StoreJob, StoreJobId
from tests.conftest import wait_for
from tests.erasure.factories import request_in_state
from tests.memories.stores.mem0_oss_helpers import add_memory, close_memory, open_memory, qdrant_config

SUBJECT = "subject-h7"


@pytest.fixture
def erased_but_in_history(tmp_path):
    """A Mem0 OSS store (Mem0's own code) where the subject's memory is gone from the vector store but its ADD row
    is still in history.db; the request is `deleted` and its store job recorded that memory's id."""
    config = qdrant_config(tmp_path)
    memory = open_memory(config)
    try:
        erased = add_memory(memory, "subject-h7 private note", user_id=SUBJECT)
        add_memory(memory, "bystander-h7 note", user_id="bystander-h7")
        memory.vector_store.delete(erased)
    finally:
        close_memory(memory)
    store = Store.objects.create(name="oss-h7", kind=Store.Kind.MEM0_OSS, config=config)
    request = request_in_state(state=State.DELETED, user_ids=[SUBJECT])
    job = StoreJob.objects.create(
        store=store, requested_by=request.reference, status=StoreJob.Status.SUCCEEDED, deleted_count=1
    )
    StoreJobId.objects.create(job=job, memory_id=erased)
    return request, config, erased


@pytest.mark.django_db
def test_a_history_row_left_for_an_erased_id_is_found_by_the_verification(erased_but_in_history):
    request, _config, _erased = erased_but_in_history

    with pytest.raises(
        VerificationIncomplete, match=r"store oss-h7 still holds data of the subject \(history 1\)"
    ):
        erasure_request_verify(request_id=request.id)

    request.refresh_from_db()
    assert request.state == State.DELETED


@pytest.mark.worker
def test_when_it_stays_the_request_fails_naming_the_store(start_worker, erased_but_in_history):
    request, _config, _erased = erased_but_in_history
    start_worker("verify", extra_env={"VERIFY_MAX_RETRIES": "1"})

    erasure_request_verify_task.delay(str(request.id))

    wait_for(
        lambda: (request.refresh_from_db(), request.state == State.FAILED)[1], timeout=60, message="failed"
    )
    assert request.failure_reason == (
        "verification found residue: store oss-h7 still holds data of the subject (history 1)"
    )


@pytest.mark.django_db
def test_once_the_history_row_is_gone_the_request_is_verified(erased_but_in_history):
    request, config, erased = erased_but_in_history
    with sqlite3.connect(config["history_db_path"]) as db:
        db.execute("DELETE FROM history WHERE memory_id = ?", [erased])

    erasure_request_verify(request_id=request.id)

    request.refresh_from_db()
    assert request.state == State.VERIFIED
    assert request.verification["stores"] == [
        {
            "store": "oss-h7",
            "kind": "mem0_oss",
            "remaining_entities": 0,
            "remaining_history": 0,
            "remaining_messages": 0,
            "remaining_vectors": 0,
        }
    ]
