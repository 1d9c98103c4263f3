"""The mem0_platform connector against a second live instance of this service over real HTTP (its own database,
web server and worker), with a fault proxy in front of it for 429, 5xx and dropped connections."""

import time
from typing import Any

import pytest

from memories.models import Store, StoreJob, StoreJobId
from memories.stores.base import StoreError, StoreUnavailable
from memories.stores.jobs import DurableProgress
from memories.stores.mem0_platform import Mem0PlatformConnector
from tests.remote_mem0 import first_n, synthetic_user

pytestmark = pytest.mark.django_db


def connector(url: str, key: str, **config: Any) -> Mem0PlatformConnector:
    return Mem0PlatformConnector({"host": url, "retries": 3, "backoff": 0.05, **config}, {"api_key": key})


def job_for(scope: dict[str, Any]) -> StoreJob:
    store = Store.objects.create(name=f"remote-{time.time_ns()}", kind=Store.Kind.MEM0_PLATFORM, config={})
    return StoreJob.objects.create(store=store, requested_by=f"ER-TEST-{time.time_ns()}", scope=scope)


def erase_to_end(
    conn: Mem0PlatformConnector, job: StoreJob, holds: list[dict[str, Any]] | None = None
) -> StoreJob:
    for _ in range(20):
        job.refresh_from_db()
        if conn.erase(dict(job.scope or {}), holds or [], DurableProgress(job, 60)):
            job.refresh_from_db()
            return job
    raise AssertionError("the erasure did not finish")


def recorded_ids(job: StoreJob) -> set[str]:
    return set(StoreJobId.objects.filter(job=job).values_list("memory_id", flat=True))


def test_count_pages_through_the_scope_and_reports_total_per_agent_per_run_and_held(remote_mem0):
    # given a subject with 205 memories of one agent and run (two pages) and 3 of another agent
    user = synthetic_user()
    remote_mem0.add(user_id=user, count=205, agent_id="bot", run_id="r1")
    remote_mem0.add(user_id=user, count=3, agent_id="legal")
    remote_mem0.add(user_id=synthetic_user("bystander"), count=2)
    # when
    counts = connector(remote_mem0.url, remote_mem0.api_key).count(
        {"user_id": user}, [{"user_id": user, "agent_id": "legal"}]
    )
    # then
    assert (counts.total, counts.held) == (208, 3)
    assert counts.by_agent == {"bot": 205, "legal": 3}
    assert counts.by_run == {"r1": 205, "": 3}


def test_erase_uses_mem0s_async_delete_records_every_id_and_leaves_bystanders(remote_mem0, fault_proxy):
    # given
    user, bystander = synthetic_user(), synthetic_user("bystander")
    ids = remote_mem0.add(user_id=user, count=30, agent_id="bot")
    kept = remote_mem0.add(user_id=bystander, count=5, agent_id="bot")
    conn = connector(fault_proxy.url, remote_mem0.api_key)
    # when
    job = erase_to_end(conn, job_for({"user_id": user}))
    # then: one DELETE /v1/memories/ (polled through its event), no batch call, every id recorded once
    assert fault_proxy.calls_to("DELETE", "/v1/memories/") == 1
    assert fault_proxy.calls_to("GET", "/v1/event/") >= 1
    assert fault_proxy.calls_to("DELETE", "/v1/batch/") == 0
    assert job.deleted_count == 30 and recorded_ids(job) == set(ids)
    assert remote_mem0.ids(user_id=user) == set()
    assert remote_mem0.ids(user_id=bystander) == set(kept)
    assert conn.verify({"user_id": user}, []) == {"memories": 0}


def test_held_memories_are_kept_and_the_rest_deleted_in_batches_of_ids(remote_mem0, fault_proxy):
    # given a subject whose memories of agent "legal" are under a hold
    user = synthetic_user()
    held = remote_mem0.add(user_id=user, count=4, agent_id="legal")
    gone = remote_mem0.add(user_id=user, count=25, agent_id="bot")
    hold = {"user_id": user, "agent_id": "legal"}
    conn = connector(fault_proxy.url, remote_mem0.api_key, batch_size=10)
    # when
    job = erase_to_end(conn, job_for({"user_id": user}), holds=[hold])
    # then: the unheld ids went by DELETE /v1/batch/ (10 a call), never Mem0's delete-everything-of-the-user
    assert fault_proxy.calls_to("DELETE", "/v1/memories/") == 0
    assert fault_proxy.calls_to("DELETE", "/v1/batch/") == 3
    assert job.deleted_count == 25 and recorded_ids(job) == set(gone)
    assert remote_mem0.ids(user_id=user) == set(held)
    assert conn.verify({"user_id": user}, [hold]) == {"memories": 0}
    assert conn.count({"user_id": user}, [hold]).held == 4


def test_a_metadata_narrowed_scope_is_erased_by_ids_only_within_the_narrowing(remote_mem0, fault_proxy):
    user = synthetic_user()
    narrowed = remote_mem0.add(user_id=user, count=6, metadata={"topic": "health"})
    other = remote_mem0.add(user_id=user, count=4, metadata={"topic": "food"})
    conn = connector(fault_proxy.url, remote_mem0.api_key)
    job = erase_to_end(conn, job_for({"user_id": user, "metadata": {"topic": "health"}}))
    assert fault_proxy.calls_to("DELETE", "/v1/memories/") == 0
    assert job.deleted_count == 6 and recorded_ids(job) == set(narrowed)
    assert remote_mem0.ids(user_id=user) == set(other)


@pytest.mark.parametrize(
    "scope",
    [
        {"user_id": "*"},
        {"user_id": ["someone", "*"]},
        {"user_id": " "},
        {"agent_id": "bot"},
        {"user_id": "a", "run_id": "*"},
    ],
)
def test_an_empty_or_star_subject_is_refused_before_any_call(remote_mem0, fault_proxy, scope):
    conn = connector(fault_proxy.url, remote_mem0.api_key)
    with pytest.raises(StoreError, match="refused"):
        conn.count(scope, [])
    with pytest.raises(StoreError, match="refused"):
        conn.erase(scope, [], DurableProgress(job_for({"user_id": "placeholder"}), 60))
    assert fault_proxy.calls == []


def test_a_429_is_retried_after_its_retry_after(remote_mem0, fault_proxy):
    user = synthetic_user()
    remote_mem0.add(user_id=user, count=3)
    fault_proxy.rules.append(
        first_n(2, {"status": 429, "headers": {"Retry-After": "1"}}, "POST", "/v3/memories/")
    )
    conn = connector(fault_proxy.url, remote_mem0.api_key, backoff=0.01)
    started = time.monotonic()
    assert conn.count({"user_id": user}, []).total == 3
    # the two waits were Retry-After's second each, not the 0.01 s backoff
    assert time.monotonic() - started >= 2.0
    assert fault_proxy.calls_to("POST", "/v3/memories/") == 3


def test_5xx_answers_and_dropped_connections_are_retried_then_succeed(remote_mem0, fault_proxy):
    user = synthetic_user()
    remote_mem0.add(user_id=user, count=3)
    fault_proxy.rules += [
        first_n(1, {"status": 500}, "POST", "/v3/memories/"),
        first_n(1, {"drop": True}, "POST", "/v3/memories/"),
        first_n(1, {"status": 503}, "POST", "/v3/memories/"),
    ]
    assert connector(fault_proxy.url, remote_mem0.api_key).count({"user_id": user}, []).total == 3
    assert fault_proxy.calls_to("POST", "/v3/memories/") == 4


def test_a_store_that_keeps_failing_raises_store_unavailable_without_the_subject(remote_mem0, fault_proxy):
    user = synthetic_user()
    fault_proxy.rules.append(lambda method, path: {"status": 502})
    with pytest.raises(StoreUnavailable) as failure:
        connector(fault_proxy.url, remote_mem0.api_key, retries=2).count({"user_id": user}, [])
    assert "HTTP 502" in str(failure.value) and user not in str(failure.value)
    assert failure.value.__context__ is None  # no chained library error (its text may echo the request)
    assert fault_proxy.calls_to("POST", "/v3/memories/") == 3


def test_a_refused_api_key_fails_at_once_and_the_connection_test_says_so(remote_mem0, fault_proxy):
    conn = connector(fault_proxy.url, "m0-not-a-key")
    with pytest.raises(StoreError, match="refused the API key") as failure:
        conn.count({"user_id": synthetic_user()}, [])
    assert not isinstance(failure.value, StoreUnavailable)
    assert fault_proxy.calls_to("POST", "/v3/memories/") == 1
    ok, detail = conn.test()
    assert not ok and "m0-not-a-key" not in detail
    assert connector(remote_mem0.url, remote_mem0.api_key).test() == (
        True,
        f"connected to 127.0.0.1:{remote_mem0.port}",
    )
