"""The official `mem0ai` MemoryClient, unchanged, against this service on a live server with a real Celery worker.

The client reads MEM0_TELEMETRY and MEM0_DIR when mem0 is first imported, so both are set before the import
(telemetry off: no network calls to PostHog; MEM0_DIR: its config file goes to a temporary directory, not ~/.mem0).
"""

import os
import tempfile
import time

import pytest

from memories.models import DeletionJob, Memory, MemoryHistory
from memories.services import api_key_create, legal_hold_place, write_block_place

os.environ["MEM0_TELEMETRY"] = "False"
os.environ.setdefault("MEM0_DIR", tempfile.mkdtemp(prefix="mem0-client-"))

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def wait_for_event(client, event_id, timeout=60):
    """Polls GET /v1/event/{id}/ through the client's own HTTP session until the job is finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.client.get(f"/v1/event/{event_id}/")
        response.raise_for_status()
        event = response.json()
        if event["status"] in ("SUCCEEDED", "FAILED"):
            return event
        time.sleep(0.2)
    raise AssertionError(f"event {event_id} did not finish in {timeout}s")


@pytest.fixture
def client(live_server):
    from mem0 import MemoryClient

    _key, raw = api_key_create(name="mem0-client-test")
    return MemoryClient(api_key=raw, host=live_server.url)


def test_official_client_drives_the_whole_memory_api(client, start_worker):
    from mem0.exceptions import MemoryNotFoundError, ValidationError

    worker = start_worker("mem0")
    assert client.org_id and client.project_id  # from GET /v1/ping/

    # add: entity ids at the top level (older style) and inside `filters` (the v3 client's style)
    added = client.add(
        [{"role": "user", "content": "I love sushi"}, {"role": "user", "content": "I live in Lyon"}],
        user_id="alice",
        metadata={"topic": "profile"},
    )
    assert [r["event"] for r in added["results"]] == ["ADD", "ADD"]
    sushi_id = added["results"][0]["id"]
    (tennis,) = client.add("I play tennis with my coach", filters={"user_id": "alice", "agent_id": "coach"})[
        "results"
    ]
    (bob,) = client.add([{"role": "user", "content": "Bob eats sushi daily"}], user_id="bob")["results"]
    (carol,) = client.add("Carol likes tea", user_id="carol", run_id="run-7")["results"]

    # get
    memory = client.get(sushi_id)
    assert memory["memory"] == "I love sushi" and memory["user_id"] == "alice"
    assert memory["metadata"] == {"topic": "profile"}

    # get_all with a plain entity filter, with paging, and with an AND/OR filter
    alice = client.get_all(filters={"user_id": "alice"})
    assert alice["count"] == 3 and {m["user_id"] for m in alice["results"]} == {"alice"}
    page = client.get_all(filters={"user_id": "alice"}, page=2, page_size=2)
    assert page["count"] == 3 and len(page["results"]) == 1 and page["next"] is None and page["previous"]
    mixed = client.get_all(
        filters={"OR": [{"AND": [{"user_id": "alice"}, {"agent_id": "coach"}]}, {"user_id": "bob"}]}
    )
    assert sorted(m["id"] for m in mixed["results"]) == sorted([tennis["id"], bob["id"]])
    with pytest.raises(ValidationError):
        client.get_all(filters={"created_at": {"gte": "2020-01-01"}})  # no entity filter: 400
    with pytest.raises(ValidationError):
        client.get_all(filters={"user_id": "alice", "colour": "red"})  # unknown key: 400

    # search
    found = client.search("what food does alice love?", filters={"user_id": "alice"})
    assert found["results"][0]["id"] == sushi_id and 0 < found["results"][0]["score"] < 1
    assert client.search("quantum chromodynamics", filters={"user_id": "alice"})["results"] == []

    # update and history
    updated = client.update(sushi_id, text="I love sushi and ramen")
    assert updated["memory"] == "I love sushi and ramen"
    history = client.history(sushi_id)
    assert [h["event"] for h in history] == ["ADD", "UPDATE"]
    assert history[1]["old_memory"] == "I love sushi" and history[1]["new_memory"] == "I love sushi and ramen"

    # batch_update
    result = client.batch_update(
        [{"memory_id": tennis["id"], "text": "I play tennis twice a week"}, {"memory_id": bob["id"], "metadata": {"k": 1}}]
    )  # fmt: skip
    assert result["message"] == "Successfully updated 2 memories"
    assert client.get(tennis["id"])["memory"] == "I play tennis twice a week"

    # delete, then the errors the client maps from our answers
    assert client.delete(tennis["id"]) == {"message": "Memory deleted successfully!"}
    with pytest.raises(MemoryNotFoundError):
        client.get(tennis["id"])
    with pytest.raises(ValidationError):
        client.get("not-a-uuid")
    assert [(h["event"], h["old_memory"], h["new_memory"]) for h in client.history(tennis["id"])] == [
        ("DELETE", None, None)
    ]
    assert not MemoryHistory.objects.filter(memory_id=tennis["id"]).exists()  # its UPDATE row went with it

    # batch_delete: unknown ids are reported, not fatal
    gone = client.batch_delete([{"memory_id": bob["id"]}, {"memory_id": tennis["id"]}])
    assert gone["message"] == "Successfully deleted 1 memories"
    assert {r["memory_id"]: r["status"] for r in gone["results"]} == {
        bob["id"]: "deleted",
        tennis["id"]: "not_found",
    }

    # users
    entities = {(e["type"], e["name"]): e["total_memories"] for e in client.users()["results"]}
    assert entities == {("user", "alice"): 2, ("user", "carol"): 1, ("run", "run-7"): 1}

    # delete_all: an async job, run by the real worker, followed through GET /v1/event/{id}/
    started = client.delete_all(user_id="alice")
    assert started["message"] == "Delete in progress. This may take some time."
    event = wait_for_event(client, started["event_id"])
    assert event["status"] == "SUCCEEDED" and event["deleted_count"] == 2, worker.log()[-2000:]
    assert not Memory.objects.filter(user_id="alice").exists()
    assert DeletionJob.objects.get(id=started["event_id"]).history_purged_count == 1  # sushi's UPDATE row
    assert not MemoryHistory.objects.filter(memory_id=sushi_id).exists()
    assert [(h["event"], h["old_memory"], h["new_memory"]) for h in client.history(sushi_id)] == [
        ("DELETE", None, None)
    ]
    assert client.get_all(filters={"user_id": "alice"})["count"] == 0

    # delete_users: DELETE /v2/entities/{type}/{name}/ for one entity, then for all that remain
    assert client.delete_users(run_id="run-7") == {"message": "Entity deleted successfully."}
    job = DeletionJob.objects.filter(kind="entity").latest("created_at")
    wait_for_event(client, job.id)
    assert not Memory.objects.filter(id=carol["id"]).exists()
    with pytest.raises(MemoryNotFoundError):
        client.delete_users(user_id="nobody")
    client.add("Dan runs marathons", user_id="dan")
    assert client.delete_users()["message"] == "All users, agents, apps and runs deleted."
    for job in DeletionJob.objects.filter(kind="entity"):
        wait_for_event(client, job.id)
    assert not Memory.objects.exists()
    assert all(j.scope is None for j in DeletionJob.objects.all())  # no clear subject id stays on a job


def test_official_client_sees_write_blocks_and_legal_holds(client):
    from mem0.exceptions import AuthenticationError, ValidationError

    (kept,) = client.add("Contract signed on May 1st", user_id="erin")["results"]
    legal_hold_place(scope={"memory_ids": [kept["id"]]}, reason="art17_3_e", note="", placed_by="t")
    with pytest.raises(ValidationError) as held:  # 409 → the client's ValidationError
        client.delete(kept["id"])
    assert "legal hold" in str(held.value.message)

    write_block_place(user_ids=["erin"], kind="erasure", reference="ER-1")
    with pytest.raises(ValidationError) as erasing:
        client.add("new fact", user_id="erin")
    assert "erasure request is in progress" in str(erasing.value.message)

    write_block_place(user_ids=["frank"], kind="suppression", reference="ER-2")
    with pytest.raises(
        ValidationError
    ) as suppressed:  # 409 → the client's ValidationError, not a key problem
        client.add("new fact", user_id="frank")
    assert not isinstance(suppressed.value, AuthenticationError)
    assert "suppressed at the data subject's request" in str(suppressed.value.message)
    assert Memory.objects.count() == 1

    # a suppression narrowed to one agent refuses only that agent's writes
    write_block_place(user_ids=["gina"], kind="suppression", reference="ER-3", scope={"agent_id": "coach"})
    with pytest.raises(ValidationError):
        client.add("new fact", user_id="gina", agent_id="coach")
    assert client.add("other fact", user_id="gina", agent_id="planner")["results"][0]["event"] == "ADD"


def test_official_client_refuses_a_bad_key(live_server):
    from mem0 import MemoryClient

    with pytest.raises(ValueError):
        MemoryClient(api_key="m0-wrong", host=live_server.url)
