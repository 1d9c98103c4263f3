"""The erasure workflow across stores, end to end: a real worker erases a subject in the built-in store and in a
connected Mem0-compatible store (a second live instance of this service over real HTTP, behind a fault proxy),
through the store going down, a store that keeps failing, and a worker SIGKILLed mid external erasure."""

import threading
import uuid
from typing import Any

import pytest

from erasure.models import ErasureRequest
from memories.models import DeletionJob, Memory, StoreJob, StoreJobId
from memories.stores.jobs import ids_digest
from tests.conftest import wait_for
from tests.e2e.helpers import BASE, bulk_memories, request_through_api, wait_closed
from tests.remote_mem0 import FaultProxy, RemoteService, first_n, synthetic_user

RESCUE_ENV = {"DELETION_STALE_SECONDS": "2", "DELETION_SWEEP_SECONDS": "1"}


def connect_store(staff_api: Any, remote: RemoteService, url: str, **config: Any) -> dict[str, Any]:
    body = {
        "name": f"vendor-{uuid.uuid4().hex[:6]}",
        "kind": "mem0_platform",
        "config": {"host": url, "retries": 1, "backoff": 0.1, **config},
        "secrets": {"api_key": remote.api_key},
    }
    response = staff_api.post("/api/v1/stores/", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def store_job(request_url: str) -> StoreJob:
    reference = ErasureRequest.objects.get(id=request_url.split("/")[-2]).reference
    return StoreJob.objects.get(requested_by=reference)


def recorded(job: StoreJob) -> set[str]:
    return set(StoreJobId.objects.filter(job=job).values_list("memory_id", flat=True))


@pytest.mark.worker
def test_an_erasure_reaches_every_enabled_store_and_its_proof_lists_each(
    staff_api, start_worker, remote_mem0, fault_proxy
):
    # given: a subject with memories here and in a connected store, and a bystander there
    user = synthetic_user()
    local_ids = bulk_memories(user_id=user, count=40, agent_id="bot", run_id="r1")
    remote_ids = remote_mem0.add(user_id=user, count=25, agent_id="bot", run_id="r2")
    bystander_user = synthetic_user("bystander")
    bystander = remote_mem0.add(user_id=bystander_user, count=3)
    store = connect_store(staff_api, remote_mem0, fault_proxy.url)
    worker = start_worker("stores")
    # when: scoped (every store counted) and approved
    url, scoped = request_through_api(staff_api, user_ids=[user])
    detail = wait_closed(staff_api, url)
    # then: the scope reported each store beside the totals, which add them up
    counts = scoped["counts"]
    assert counts["scoped_total"] == 65 and counts["scoped_by_agent"] == {"bot": 65}
    assert counts["scoped_by_run"] == {"r1": 40, "r2": 25}
    assert [(s["store"], s["kind"], s["total"], s["held"]) for s in counts["stores"]] == [
        ("builtin", "builtin", 40, 0),
        (store["name"], "mem0_platform", 25, 0),
    ]
    # and it was erased and verified everywhere, with exact counts per store
    assert detail["state"] == "verified", detail
    assert detail["counts"]["deleted_count"] == 65
    assert remote_mem0.ids(user_id=user) == set()
    assert remote_mem0.ids(user_id=bystander_user) == set(bystander)
    job = store_job(url)
    assert job.status == "SUCCEEDED" and job.deleted_count == 25 and job.scope is None
    assert recorded(job) == set(remote_ids) and job.digest == ids_digest(remote_ids)
    bars = {s["store"]: s for s in detail["progress"]["stores"]}
    assert bars["builtin"]["deleted"] == 40 and bars[store["name"]]["deleted"] == 25
    assert bars[store["name"]]["percent"] == 100
    assert detail["verification"]["stores"] == [
        {"store": store["name"], "kind": "mem0_platform", "remaining_memories": 0}
    ]
    # the certificate lists each store with its counts, digest, residue purged and what stays out of reach
    certificate = staff_api.get(url + "certificate/").json()["certificate"]
    listed = {s["store"]: s for s in certificate["stores"]}
    assert listed["builtin"]["deleted"] == 40 and listed["builtin"]["deleted_ids_digest"] == ids_digest(
        [str(i) for i in local_ids]
    )
    remote = listed[store["name"]]
    assert (remote["scoped"], remote["deleted"], remote["held"]) == (25, 25, 0)
    assert remote["deleted_ids_digest"] == ids_digest(remote_ids)
    assert remote["residue_purged"] == {"history_rows": 0, "entity_rows": 0, "chat_messages": 0}
    assert "vendor" in remote["outside_reach"]
    # the worker's task arguments held ids only: neither the subject nor the store's key reached its log
    assert user not in worker.log() and remote_mem0.api_key not in worker.log()
    # and the request's per-store counts were pseudonymised with the rest
    request = ErasureRequest.objects.get(id=url.split("/")[-2])
    assert "r2" not in str(request.scoped_stores) and request.scoped_stores[1]["total"] == 25


@pytest.mark.worker
def test_the_remote_store_down_mid_erasure_is_retried_and_the_erasure_completes(
    staff_api, start_worker, remote_mem0, fault_proxy
):
    # given: the store answers the listing, then is down for its next five calls (503s and dropped connections)
    user = synthetic_user()
    bulk_memories(user_id=user, count=10)
    remote_ids = remote_mem0.add(user_id=user, count=12)
    connect_store(staff_api, remote_mem0, fault_proxy.url)
    start_worker("down", extra_env={"STORE_JOB_MAX_RETRIES": "5"})
    url, _ = request_through_api(staff_api, user_ids=[user], approve=False)
    fault_proxy.rules += [
        first_n(3, {"status": 503}, "DELETE", "/v1/memories/"),
        first_n(2, {"drop": True}, "GET", "/v1/event/"),
    ]
    # when
    assert staff_api.post(url + "approve/", {}, format="json").status_code == 200
    detail = wait_closed(staff_api, url)
    # then: retried (connector backoff, then the task's), completed with exact counts
    assert detail["state"] == "verified", detail
    job = store_job(url)
    assert job.attempts >= 2 and job.deleted_count == 12 and recorded(job) == set(remote_ids)
    assert fault_proxy.calls_to("DELETE", "/v1/memories/") == 4  # 3 refused, 1 that deleted
    assert detail["counts"]["deleted_count"] == 22
    assert remote_mem0.ids(user_id=user) == set()


@pytest.mark.worker
def test_a_store_that_keeps_failing_fails_the_request_naming_it_and_retry_resumes_only_it(
    staff_api, start_worker, remote_mem0, fault_proxy
):
    # given: a store whose deletes keep failing
    user = synthetic_user()
    bulk_memories(user_id=user, count=15)
    remote_ids = remote_mem0.add(user_id=user, count=5)
    store = connect_store(staff_api, remote_mem0, fault_proxy.url, retries=0)
    down = {"on": True}
    fault_proxy.rules.append(
        lambda method, path: {"status": 500} if down["on"] and method == "DELETE" else None
    )
    start_worker("failing", extra_env={"STORE_JOB_MAX_RETRIES": "1"})
    # when
    url, _ = request_through_api(staff_api, user_ids=[user])
    detail = wait_closed(staff_api, url)
    # then: failed, naming the store; the built-in store's job had finished on its own
    assert detail["state"] == "failed", detail
    assert (
        detail["failure_reason"].startswith(f"store {store['name']}:")
        and "HTTP 500" in detail["failure_reason"]
    )
    request = ErasureRequest.objects.get(id=url.split("/")[-2])
    builtin_job = DeletionJob.objects.get(id=request.deletion_job_id)
    assert builtin_job.status == "SUCCEEDED" and builtin_job.deleted_count == 15
    dispatches = builtin_job.attempts
    assert store_job(url).status == "FAILED" and "retry" in detail["allowed_actions"]
    # when the store is back and staff retry
    down["on"] = False
    assert staff_api.post(url + "retry/", {}, format="json").status_code == 200
    detail = wait_closed(staff_api, url)
    # then: only the store's job ran again; the request is verified with every count exact
    assert detail["state"] == "verified", detail
    builtin_job.refresh_from_db()
    assert builtin_job.attempts == dispatches
    assert store_job(url).deleted_count == 5 and recorded(store_job(url)) == set(remote_ids)
    assert detail["counts"]["deleted_count"] == 20


@pytest.mark.worker
def test_a_worker_sigkilled_mid_external_erasure_resumes_with_exact_counts(
    staff_api, start_worker, remote_mem0, fault_proxy: FaultProxy
):
    # given: a metadata-narrowed erasure (deleted in batches of 20 ids) whose third batch the store executes but
    # whose answer never reaches the worker
    user = synthetic_user()
    bulk_memories(user_id=user, count=5)  # here, outside the narrowing (no metadata): kept
    remote_ids = remote_mem0.add(user_id=user, count=100, metadata={"topic": "health"})
    kept = remote_mem0.add(user_id=user, count=7, metadata={"topic": "food"})
    connect_store(staff_api, remote_mem0, fault_proxy.url, batch_size=20)
    stalled = threading.Event()
    batches = {"n": 0}

    def third_batch_stalls(method: str, path: str) -> dict[str, Any] | None:
        if method == "DELETE" and path.startswith("/v1/batch/"):
            batches["n"] += 1
            if batches["n"] == 3:
                return {"stall": stalled, "forward": True}
        return None

    fault_proxy.rules.append(third_batch_stalls)
    doomed = start_worker("doomed-store")
    response = staff_api.post(
        BASE,
        {"regulation": "gdpr", "subject": {"user_ids": [user]}, "scope": {"metadata": {"topic": "health"}}},
        format="json",
    )
    url = f"{BASE}{response.json()['id']}/"
    assert staff_api.post(url + "verify-identity/", {"note": "ok"}, format="json").status_code == 200
    assert staff_api.post(url + "scope/", {}, format="json").json()["counts"]["stores"][1]["total"] == 100
    assert staff_api.post(url + "approve/", {}, format="json").status_code == 200
    # when: SIGKILLed while the third batch's answer is held (the store deleted it; the job did not record it)
    wait_for(
        lambda: batches["n"] >= 3 and store_job(url).deleted_count == 40, timeout=60, message="third batch"
    )
    doomed.kill()
    stalled.set()
    job = store_job(url)
    assert job.status == "RUNNING" and job.deleted_count == 40
    assert len(remote_mem0.ids(user_id=user)) == 7 + 40  # 60 gone on the store, 40 of them recorded
    start_worker("rescuer-store", extra_env=RESCUE_ENV, beat=True)
    detail = wait_closed(staff_api, url, timeout=90)
    # then: resumed from its checkpoint, the third batch repeated, every id recorded exactly once
    assert detail["state"] == "verified", detail
    job.refresh_from_db()
    assert job.deleted_count == 100 and recorded(job) == set(remote_ids)
    assert job.digest == ids_digest(remote_ids)
    assert batches["n"] == 6  # five batches and the repeated third
    assert remote_mem0.ids(user_id=user) == set(kept)
    assert Memory.objects.filter(user_id=user).count() == 5
    assert detail["counts"]["deleted_count"] == 100
