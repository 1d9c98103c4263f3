"""Delete paths of the memory API (all through the one engine), events, batches, entities and write blocks."""

import json
import uuid
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from memories.engine import deletion_job_run
from memories.models import DeletionJob, Memory, MemoryHistory, MemoryTombstone
from memories.services import legal_hold_place, memories_add, memory_update, write_block_place
from tests.memories.deletion_checks import assert_deleted_exactly


def ids(memories):
    return [str(m.id) for m in memories]


# ---- DELETE /v1/memories/?… and GET /v1/event/{id}/ -----------------------------------------------------------------


def test_delete_by_filter_starts_a_job_that_deletes_only_that_scope(api, django_capture_on_commit_callbacks):
    # given
    memories_add(texts=["a1", "a2"], user_id="alice", metadata={"src": "chat"})
    kept = memories_add(texts=["a3"], user_id="alice", metadata={"src": "mail"})
    other = memories_add(texts=["b1"], user_id="bob", metadata={"src": "chat"})

    # when
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api.delete(
            "/v1/memories/?" + urlencode({"user_id": "alice", "metadata": json.dumps({"src": "chat"})})
        )

    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["message"] == "Delete in progress. This may take some time."
    assert len(callbacks) == 1  # the Celery task is sent on commit
    job = DeletionJob.objects.get(id=body["event_id"])
    assert job.kind == "filter" and job.status == "PENDING"
    pending = api.get(f"/v1/event/{job.id}/").json()
    assert pending["status"] == "PENDING" and pending["deleted_count"] == 0

    deletion_job_run(job_id=job.id)  # what the worker does (the worker itself: test_mem0_client.py)
    event = api.get(f"/v1/event/{job.id}/").json()
    assert event["id"] == str(job.id) and event["status"] == "SUCCEEDED" and event["deleted_count"] == 2
    assert set(Memory.objects.values_list("id", flat=True)) == {kept[0].id, other[0].id}


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({}, "At least one of user_id"),
        ({"org_id": "x"}, "At least one of user_id"),
        ({"metadata": "{not json"}, "metadata"),
        ({"metadata": "[1, 2]"}, "metadata"),
        ({"metadata": "{}"}, "metadata"),
        ({"user_id": ""}, "user_id"),
        ({"user_id": "x" * 300}, "user_id"),
    ],
)
def test_delete_by_filter_needs_a_valid_scope(api, params, needle):
    memories_add(texts=["a"], user_id="alice")
    response = api.delete("/v1/memories/?" + urlencode(params))
    assert response.status_code == 400 and needle in response.json()["error"]
    assert not DeletionJob.objects.exists() and Memory.objects.count() == 1


def test_event_answers_400_for_a_bad_id_and_404_for_an_unknown_one(api):
    assert api.get("/v1/event/nope/").json() == {"error": "event_id should be a valid UUID"}
    unknown = api.get(f"/v1/event/{uuid.uuid4()}/")
    assert unknown.status_code == 404 and unknown.json() == {"error": "Event not found!"}


# ---- DELETE /v1/batch/ -------------------------------------------------------------------------------------------------


def test_batch_delete_reports_each_id_and_never_fails_on_unknown_ones(api):
    # given
    gone = memories_add(texts=["x1", "x2", "x3"], user_id="alice")
    memory_update(memory=gone[1], text="x2 changed")  # one with an UPDATE row, two without history
    held = memories_add(texts=["evidence"], user_id="alice")
    memory_update(memory=held[0], text="evidence v2")
    legal_hold_place(scope={"memory_ids": ids(held)}, reason="art17_3_e", note="", placed_by="t")
    unknown = str(uuid.uuid4())
    payload = [*ids(gone), ids(held)[0], unknown, "not-a-uuid"]

    # when
    response = api.delete("/v1/batch/", {"memories": [{"memory_id": i} for i in payload]}, format="json")

    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["message"] == "Successfully deleted 3 memories"
    assert {r["memory_id"]: r["status"] for r in body["results"]} == {
        ids(gone)[0]: "deleted",
        ids(gone)[1]: "deleted",
        ids(gone)[2]: "deleted",
        ids(held)[0]: "held",
        unknown: "not_found",
        "not-a-uuid": "invalid_id",
    }
    assert (body["deleted"], body["held"], body["not_found"], body["invalid_id"]) == (3, 1, 1, 1)
    assert list(Memory.objects.values_list("id", flat=True)) == [held[0].id]
    job = DeletionJob.objects.get(kind="batch")
    (tombstone,) = assert_deleted_exactly(job, [m.id for m in gone], history_purged=1, held=1)
    for memory in gone:
        events = api.get(f"/v1/memories/{memory.id}/history/").json()
        assert [(e["event"], e["old_memory"], e["new_memory"]) for e in events] == [("DELETE", None, None)]
    # the held memory keeps its history, text included
    assert list(MemoryHistory.objects.values_list("memory_id", "new_memory")) == [(held[0].id, "evidence v2")]
    assert not MemoryTombstone.objects.filter(ids__contains=[held[0].id]).exists()


def test_batch_delete_of_only_unknown_ids_runs_no_job(api):
    response = api.delete("/v1/batch/", {"memories": [{"memory_id": str(uuid.uuid4())}]}, format="json")
    assert response.status_code == 200 and response.json()["not_found"] == 1
    assert not DeletionJob.objects.exists()


@pytest.mark.parametrize("verb,method", [("deleted", "delete"), ("updated", "put")])
def test_batches_over_1000_are_refused(api, verb, method):
    items = [{"memory_id": str(uuid.uuid4()), "text": "t"} for _ in range(1001)]
    response = getattr(api, method)("/v1/batch/", {"memories": items}, format="json")
    assert response.status_code == 400
    assert response.json() == {"error": f"Maximum of 1000 memories can be {verb} in a single request"}


@pytest.mark.parametrize("method", ["delete", "put"])
@pytest.mark.parametrize("body", [{}, {"memories": []}, {"memories": "x"}, {"memories": [{"id": "x"}]}, [1]])
def test_batches_reject_malformed_bodies(api, method, body):
    response = getattr(api, method)("/v1/batch/", body, format="json")
    assert response.status_code == 400 and "memor" in response.json()["error"]


# ---- PUT /v1/batch/ ---------------------------------------------------------------------------------------------------


def test_batch_update_changes_every_memory(api):
    mems = memories_add(texts=["one", "two"], user_id="alice")
    response = api.put(
        "/v1/batch/",
        {"memories": [{"memory_id": ids(mems)[0], "text": "uno"}, {"memory_id": ids(mems)[1], "metadata": {"n": 2}}]},
        format="json",
    )  # fmt: skip
    assert response.status_code == 200 and response.json() == {"message": "Successfully updated 2 memories"}
    assert Memory.objects.get(id=mems[0].id).text == "uno"
    assert Memory.objects.get(id=mems[1].id).metadata == {"n": 2}
    assert MemoryHistory.objects.filter(memory_id=mems[0].id, event="UPDATE", new_memory="uno").exists()


def test_batch_update_is_all_or_nothing(api):
    mems = memories_add(texts=["one"], user_id="alice")
    frozen = memories_add(texts=["frozen"], user_id="alice", immutable=True)
    missing = str(uuid.uuid4())
    not_found = api.put(
        "/v1/batch/",
        {"memories": [{"memory_id": ids(mems)[0], "text": "changed"}, {"memory_id": missing, "text": "x"}]},
        format="json",
    )  # fmt: skip
    immutable = api.put(
        "/v1/batch/",
        {"memories": [{"memory_id": ids(mems)[0], "text": "changed"}, {"memory_id": ids(frozen)[0], "text": "x"}]},
        format="json",
    )  # fmt: skip
    bad_id = api.put("/v1/batch/", {"memories": [{"memory_id": "nope", "text": "x"}]}, format="json")

    assert not_found.status_code == 404 and not_found.json()["memory_id"] == missing
    assert immutable.status_code == 400 and "immutable" in immutable.json()["error"]
    assert bad_id.status_code == 400 and "memory_id should be a valid UUID" in bad_id.json()["error"]
    assert Memory.objects.get(id=mems[0].id).text == "one"


# ---- write blocks ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "code", "needle"),
    [
        ("erasure", 409, "An erasure request is in progress for this user_id"),
        ("suppression", 409, "erased and suppressed at the data subject's request"),
    ],
)
def test_writes_for_a_blocked_user_are_refused(api, kind, code, needle):
    # given
    mine = memories_add(texts=["before"], user_id="alice")
    write_block_place(user_ids=["alice"], kind=kind, reference="ER-TEST-1")

    # when
    added = api.post(
        "/v3/memories/add/",
        {"messages": [{"role": "user", "content": "new"}], "user_id": "alice"},
        format="json",
    )
    legacy = api.post(
        "/v1/memories/", {"messages": [{"role": "user", "content": "new"}], "filters": {"user_id": "alice"}},
        format="json",
    )  # fmt: skip
    updated = api.put(f"/v1/memories/{mine[0].id}/", {"text": "after"}, format="json")
    batch = api.put(
        "/v1/batch/", {"memories": [{"memory_id": str(mine[0].id), "text": "after"}]}, format="json"
    )
    other_user = api.post(
        "/v3/memories/add/",
        {"messages": [{"role": "user", "content": "fine"}], "user_id": "bob"},
        format="json",
    )

    # then
    for response in (added, legacy, updated, batch):
        assert response.status_code == code and needle in response.json()["error"]
    assert other_user.status_code == 200
    assert list(Memory.objects.filter(user_id="alice").values_list("text", flat=True)) == ["before"]


# ---- entities ---------------------------------------------------------------------------------------------------------------


def test_entities_lists_each_entity_with_counts_in_one_query_per_type(api):
    memories_add(texts=["a", "b"], user_id="alice", agent_id="helper")
    memories_add(texts=["c"], user_id="bob", run_id="run-1")
    memories_add(texts=[f"x{i}" for i in range(20)], app_id="app-1")

    with CaptureQueriesContext(connection) as queries:
        response = api.get("/v1/entities/")

    assert response.status_code == 200
    results = {(r["type"], r["name"]): r for r in response.json()["results"]}
    assert {k: r["total_memories"] for k, r in results.items()} == {
        ("user", "alice"): 2,
        ("user", "bob"): 1,
        ("agent", "helper"): 2,
        ("app", "app-1"): 20,
        ("run", "run-1"): 1,
    }
    assert results[("user", "alice")]["created_at"] and results[("user", "alice")]["updated_at"]
    memory_queries = [q for q in queries.captured_queries if "memories_memory" in q["sql"]]
    assert len(memory_queries) == 4 and all("GROUP BY" in q["sql"] for q in memory_queries)


def test_entity_delete_starts_a_job_for_that_entity(api):
    memories_add(texts=["a", "b"], user_id="alice")
    memories_add(texts=["c"], user_id="bob", agent_id="alice")

    response = api.delete("/v2/entities/user/alice/")

    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Delete in progress. This may take some time."
    job = DeletionJob.objects.get(id=body["event_id"])
    assert job.kind == "entity" and job.scope == {"user_id": "alice"}
    deletion_job_run(job_id=job.id)
    assert list(Memory.objects.values_list("user_id", flat=True)) == ["bob"]
    assert api.get(f"/v1/event/{job.id}/").json()["deleted_count"] == 2


def test_entity_delete_handles_names_with_slashes_and_unknown_entities(api):
    memories_add(texts=["a"], run_id="team/run 1")
    assert api.delete("/v2/entities/run/team%2Frun%201/").status_code == 200
    assert DeletionJob.objects.get().scope == {"run_id": "team/run 1"}
    unknown = api.delete("/v2/entities/user/nobody/")
    assert unknown.status_code == 404 and unknown.json() == {"error": "Entity not found!"}


def test_entity_delete_rejects_an_unknown_type(api):
    response = api.delete("/v2/entities/planet/mars/")
    assert response.status_code == 400 and "planet" in response.json()["error"]
    assert not DeletionJob.objects.exists()
