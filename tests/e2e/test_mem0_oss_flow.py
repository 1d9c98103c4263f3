"""The erasure workflow on a connected Mem0 OSS store, end to end: a store built by Mem0's own code (embedded Qdrant,
history.db) registered through the API, a subject erased there and in the built-in store by a real worker, and
what Mem0 itself then reads; the embedded Qdrant folder held by the application (clear failure, retry succeeds)."""

import uuid
from pathlib import Path
from typing import Any

import pytest

from erasure.models import ErasureRequest
from erasure.services.holds import legal_hold_create
from memories.models import StoreJob, StoreJobId
from memories.stores.jobs import ids_digest
from tests.e2e.helpers import bulk_memories, request_through_api, wait_closed
from tests.memories.stores.mem0_oss_helpers import (
    add_memory,
    close_memory,
    file_hits,
    open_memory,
    qdrant_config,
    save_chat,
)
from tests.remote_mem0 import synthetic_user

FAST_RETRIES = {"STORE_JOB_MAX_RETRIES": "1", "STORE_JOB_MAX_BACKOFF_SECONDS": "0.2"}


def build_store(root: Path, subject: str, bystander: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Through Mem0's own code: the subject's memories (one updated, one with an entity, one under a legal hold's
    scope), a chat session; the bystander's memories, entity and chat. Closed after (the worker must open it)."""
    config = qdrant_config(root, collection=f"m{uuid.uuid4().hex[:8]}")
    memory = open_memory(config)
    s: dict[str, Any] = {"ids": [], "texts": []}
    try:
        for n in range(4):
            text = f"{subject} private note {n}"
            s["ids"].append(add_memory(memory, text, user_id=subject, agent_id="bot", run_id="r9"))
            s["texts"].append(text)
        s["ids"].append(
            add_memory(memory, f"{subject} sees Dr Who", user_id=subject, entities=[f"Person {subject}"])
        )
        memory.update(s["ids"][0], f"{subject} private note zero, updated")
        s["texts"] += [f"{subject} sees Dr Who", f"{subject} private note zero, updated"]
        s["held_id"] = add_memory(memory, f"{subject} contract C-9", user_id=subject, metadata={"case": "c9"})
        s["session"] = save_chat(memory, [f"{subject} chat: my PIN is 4321"], user_id=subject, agent_id="bot")
        s["texts"].append(f"{subject} chat: my PIN is 4321")
        s["bystander_ids"] = [
            add_memory(memory, f"{bystander} likes tea", user_id=bystander, entities=[f"Person {bystander}"]),
            add_memory(memory, f"{bystander} likes rain", user_id=bystander, agent_id="bot"),
        ]
        s["bystander_session"] = save_chat(memory, [f"{bystander} chat: hi"], user_id=bystander)
    finally:
        close_memory(memory)
    return config, s


def connect(staff_api: Any, config: dict[str, Any]) -> dict[str, Any]:
    response = staff_api.post(
        "/api/v1/stores/",
        {"name": f"oss-{uuid.uuid4().hex[:6]}", "kind": "mem0_oss", "config": config},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()


def store_job(url: str) -> StoreJob:
    reference = ErasureRequest.objects.get(id=url.split("/")[-2]).reference
    return StoreJob.objects.get(requested_by=reference)


def mem0_reads(config: dict[str, Any], user_id: str) -> set[str]:
    memory = open_memory(config)
    try:
        return {m["id"] for m in memory.get_all(filters={"user_id": user_id})["results"]}
    finally:
        close_memory(memory)


@pytest.mark.worker
def test_an_erasure_reaches_a_mem0_oss_store_and_mem0_itself_then_finds_nothing_of_the_subject(
    staff_api, start_worker, tmp_path
):
    # given: a subject in the built-in store and in a Mem0 OSS store, a bystander there, a hold on one memory
    subject, bystander = synthetic_user(), synthetic_user("bystander")
    bulk_memories(user_id=subject, count=6, agent_id="bot")
    config, s = build_store(tmp_path, subject, bystander)
    store = connect(staff_api, config)
    legal_hold_create(
        scope={"user_id": subject, "metadata": {"case": "c9"}},
        reason="art17_3_e",
        note="case c9",
        actor="dpo",
    )
    worker = start_worker("oss")
    # when: scoped, approved, run
    url, scoped = request_through_api(staff_api, user_ids=[subject])
    detail = wait_closed(staff_api, url)
    # then: the scope counted the store exactly, the hold's memory as held
    entry = next(e for e in scoped["counts"]["stores"] if e["store"] == store["name"])
    assert (entry["kind"], entry["total"], entry["held"]) == ("mem0_oss", 5, 1)
    assert entry["by_agent"] == {"bot": 4, "": 1} and entry["by_run"] == {"r9": 4, "": 1}
    assert scoped["counts"]["scoped_total"] == 11
    # and the request was erased and verified everywhere
    assert detail["state"] == "verified", detail
    assert detail["counts"]["deleted_count"] == 11
    job = store_job(url)
    assert job.status == "SUCCEEDED" and job.deleted_count == 5 and job.held_count == 1
    assert set(StoreJobId.objects.filter(job=job).values_list("memory_id", flat=True)) == set(s["ids"])
    # Mem0's own reading: none of the subject's memories but the held one, every one of the bystander's
    assert mem0_reads(config, subject) == {s["held_id"]}
    assert mem0_reads(config, bystander) == set(s["bystander_ids"])
    history = Path(config["history_db_path"])
    assert [t for t in s["texts"] if file_hits(history, t)] == []
    # the subject's id is left only in the held memory's ADD row
    assert file_hits(history, subject) == file_hits(history, f"{subject} contract C-9") == 1
    memory = open_memory(config)
    try:
        assert memory.db.get_last_messages(s["session"]) == []
        assert [m["content"] for m in memory.db.get_last_messages(s["bystander_session"])] == [
            f"{bystander} chat: hi"
        ]
        entities = {r.payload["data"] for r in memory.entity_store.list(filters={}, top_k=100)[0]}
        assert entities == {f"Person {bystander}"}
    finally:
        close_memory(memory)
    # the certificate lists the store with its counts, digest, residue purged and residual windows
    certificate = staff_api.get(url + "certificate/").json()["certificate"]
    listed = {e["store"]: e for e in certificate["stores"]}[store["name"]]
    assert (listed["kind"], listed["scoped"], listed["deleted"], listed["held"]) == ("mem0_oss", 5, 5, 1)
    assert listed["deleted_ids_digest"] == ids_digest(s["ids"])
    # ADD rows of 5 memories, UPDATE of one; Mem0 writes no DELETE row when we erase; one entity row; one chat turn
    assert listed["residue_purged"] == {"history_rows": 6, "entity_rows": 1, "chat_messages": 1}
    assert "history database" in listed["outside_reach"]
    assert certificate["residual_windows"]
    assert subject not in worker.log()


@pytest.mark.worker
def test_an_embedded_qdrant_held_by_the_application_fails_the_request_naming_the_store_and_retry_completes(
    staff_api, start_worker, tmp_path
):
    # given: a scoped request on a Mem0 OSS store whose Qdrant folder the application then holds open
    subject, bystander = synthetic_user(), synthetic_user("bystander")
    bulk_memories(user_id=subject, count=3)
    config, s = build_store(tmp_path, subject, bystander)
    store = connect(staff_api, config)
    start_worker("locked", extra_env=FAST_RETRIES)
    url, scoped = request_through_api(staff_api, user_ids=[subject], approve=False)
    assert scoped["counts"]["scoped_total"] == 9
    app = open_memory(config)
    try:
        # when approved
        assert staff_api.post(url + "approve/", {}, format="json").status_code == 200
        detail = wait_closed(staff_api, url)
        # then: the store's job failed with the clear message after its retries; the request names the store
        assert detail["state"] == "failed", detail
        assert detail["failure_reason"].startswith(f"store {store['name']}:")
        assert "stop the application or run Qdrant in server mode" in detail["failure_reason"]
        job = store_job(url)
        assert job.status == "FAILED" and job.attempts == 2 and job.deleted_count == 0
        assert mem0_reads_open(app, subject) == {*s["ids"], s["held_id"]}
    finally:
        close_memory(app)
    # when the application lets go and staff retry
    assert staff_api.post(url + "retry/", {}, format="json").status_code == 200
    detail = wait_closed(staff_api, url)
    # then: verified with exact counts
    assert detail["state"] == "verified", detail
    assert detail["counts"]["deleted_count"] == 9
    job = store_job(url)
    assert (
        job.status == "SUCCEEDED"
        and job.deleted_count == 6
        and job.digest == ids_digest([*s["ids"], s["held_id"]])
    )
    assert mem0_reads(config, subject) == set()
    assert mem0_reads(config, bystander) == set(s["bystander_ids"])


def mem0_reads_open(memory: Any, user_id: str) -> set[str]:
    return {m["id"] for m in memory.get_all(filters={"user_id": user_id})["results"]}
