"""Faults in the middle of an erasure. Whatever breaks — the worker SIGKILLed, Redis killed and restarted empty, the
worker's PostgreSQL backend terminated, a second request for the same subject, an agent still writing for the
subject — the request still reaches `verified` with exact counts: deleted == the scoped count not under hold,
held counted, exactly one DELETE event per memory, nothing of the subject left.
"""

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import kombu.pools
import pytest
from django.db import connection, connections
from django.urls import Resolver404, resolve
from rest_framework.test import APIClient

from config.celery import app as celery_app
from erasure.models import ErasureRequest
from erasure.services import legal_hold_create
from memories.engine import ids_digest
from memories.models import DeletionJob, Memory
from memories.selectors import deletion_job_get, memory_history
from memories.services import MemoryWriteBlocked, memories_add, memory_update
from tests.conftest import wait_for
from tests.e2e.helpers import (
    RedisServer,
    bulk_memories,
    history_rows,
    request_through_api,
    request_tombstone_ids,
    sleep_until,
    tombstone_counts,
    wait_closed,
)

RESCUE_ENV = {"DELETION_STALE_SECONDS": "2", "DELETION_SWEEP_SECONDS": "1"}


class Subject:
    """A subject with `count` memories (bulk-inserted as memories_add writes them), some of them edited (UPDATE
    history rows, which the erasure must purge), `held` of them under a legal hold (each edited once: its history
    stays), and a bystander."""

    def __init__(self, name: str, count: int, held: int = 3):
        self.user_id = f"{name}-{uuid.uuid4().hex[:8]}"
        self.ids = bulk_memories(user_id=self.user_id, count=count, agent_id="bot", run_id="r1")
        self.held_ids = [
            m.id for m in memories_add(texts=["keep"] * held, user_id=self.user_id, agent_id="legal")
        ]
        # 12 edited memories spread over the keyspace (so the purge falls into many batches, before and after a
        # fault), the first 4 of them twice: 16 UPDATE rows
        self.updated_ids = self.ids[:: max(1, count // 12)][:12]
        for i, memory_id in enumerate(self.updated_ids):
            for version in range(2 if i < 4 else 1):
                memory_update(memory=Memory(id=memory_id), text=f"edited {version} {memory_id}")
        for memory_id in self.held_ids:
            memory_update(memory=Memory(id=memory_id), text="keep, amended")
        self.update_rows = history_rows(self.ids)
        assert self.update_rows == len(self.updated_ids) + min(4, len(self.updated_ids)) > 0
        if held:
            legal_hold_create(
                scope={"user_id": self.user_id, "agent_id": "legal"}, reason="art17_3_e", actor="test"
            )
        self.bystander_ids = bulk_memories(user_id=f"bystander-{self.user_id}", count=30)

    def assert_erased(self, detail: dict[str, Any], *, single_job: bool = True) -> None:
        """Exact outcome: verified, counts equal to what was scoped, nothing of the subject left but the held."""
        assert detail["state"] == "verified", detail
        counts = detail["counts"]
        assert counts["scoped_total"] == len(self.ids) + len(self.held_ids)
        assert counts["scoped_held"] == len(self.held_ids)
        if single_job:
            assert counts["deleted_count"] == len(self.ids)
            assert counts["held_count"] == len(self.held_ids)
            # one per history row deleted: the UPDATE events of the edited memories
            assert counts["history_purged_count"] == self.update_rows
            # the digest of a resumed job equals that of one uninterrupted pass over the sorted ids
            assert counts["deleted_ids_digest"] == ids_digest(sorted(self.ids))
        # whatever the jobs: the request's digest covers exactly the ids its jobs' tombstones hold, each once
        mine = request_tombstone_ids(detail["reference"])
        assert len(mine) == len(set(mine)) == counts["deleted_count"]
        assert counts["deleted_ids_digest"] == ids_digest(mine)
        assert detail["verification"]["memories_remaining"] == 0
        assert detail["verification"]["history_text_remaining"] == 0
        remaining = set(Memory.objects.filter(user_id=self.user_id).values_list("id", flat=True))
        assert remaining == set(self.held_ids)
        assert Memory.objects.filter(id__in=self.bystander_ids).count() == len(self.bystander_ids)
        # no history row left for a deleted memory; the held ones keep theirs
        assert history_rows(self.ids) == 0
        assert history_rows(self.held_ids) == len(self.held_ids)
        # exactly one content-free DELETE event per deleted memory: nothing deleted twice, nothing missed
        assert tombstone_counts(self.ids) == dict.fromkeys(self.ids, 1)
        assert tombstone_counts(self.held_ids + self.bystander_ids) == {}
        for memory_id in [*self.updated_ids, self.ids[1], self.ids[-1]]:
            events = memory_history(memory_id=memory_id)
            assert events is not None and len(events) == 1, (memory_id, events)
            assert (events[0].event, events[0].old_memory, events[0].new_memory) == ("DELETE", None, None)
        for memory_id in self.held_ids:
            assert [e.event for e in memory_history(memory_id=memory_id) or []] == ["ADD", "UPDATE"]


def _job_id(staff_api: APIClient, url: str) -> str:
    return str(staff_api.get(url).json()["deletion_job"])


def _mid_job(job_id: str, total: int, timeout: float = 60) -> DeletionJob:
    """Waits until the job has deleted some but not all of its memories."""

    def mid() -> DeletionJob | None:
        job = deletion_job_get(job_id=job_id)
        assert job is not None
        assert not job.is_finished, "the job finished before the fault could be injected"
        return job if 0 < job.deleted_count < total else None

    return sleep_until(mid, timeout=timeout)


@pytest.mark.worker
def test_a_worker_sigkilled_mid_erasure_is_finished_by_the_sweeper(staff_api, start_worker):
    # given: 20k memories, a worker deleting them 100 at a time
    subject = Subject("killed", 20_000)
    doomed = start_worker("doomed", extra_env={"DELETION_BATCH_SIZE": "100"})
    url, _ = request_through_api(staff_api, user_ids=[subject.user_id])
    job_id = _job_id(staff_api, url)

    # when: the worker (and its pool child) is SIGKILLed mid-job
    _mid_job(job_id, len(subject.ids))
    doomed.kill()
    job = deletion_job_get(job_id=job_id)
    assert job is not None and job.status == "RUNNING" and 0 < job.deleted_count < len(subject.ids)
    assert ErasureRequest.objects.get(id=url.split("/")[-2]).state == "scoped"
    # its message sits unacked in Redis for the visibility timeout: only the sweeper can bring the job back
    rescuer = start_worker("rescuer", extra_env={**RESCUE_ENV, "DELETION_BATCH_SIZE": "2000"}, beat=True)
    detail = wait_closed(staff_api, url, timeout=90)

    # then
    subject.assert_erased(detail)
    job.refresh_from_db()
    assert job.status == "SUCCEEDED"  # (attempts counts dispatches; a re-sent ticket is not a new one)
    assert "re-sent stale deletion jobs" in rescuer.log()


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of this test only, used as the broker by the worker AND by this process."""
    server = RedisServer()
    previous = celery_app.conf.broker_url
    _use_broker(server.url)
    try:
        yield server
    finally:
        _use_broker(previous)
        server.stop()


def _use_broker(url: str) -> None:
    # Celery caches its connection and producer pools (and kombu keeps them in a global registry); close and
    # forget them all, as after a fork, so the next .delay() connects to `url`.
    celery_app.conf.broker_url = url
    kombu.pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.mark.worker
@pytest.mark.parametrize("outage", ["one_second", "until_the_job_ends"])
def test_redis_killed_and_restarted_empty_mid_erasure(staff_api, start_worker, private_redis, outage):
    # given: one_second — short task budgets, so the job re-enqueues itself through Redis every few batches and
    # loses those messages; until_the_job_ends — one long task finishes the job while Redis is down, so the
    # message that starts verification cannot be sent
    subject = Subject("redis", 8_000)
    budget = "0.3" if outage == "one_second" else "60"
    env = {
        **RESCUE_ENV,
        "REDIS_URL": private_redis.url,
        "DELETION_BATCH_SIZE": "50",
        "DELETION_TASK_BUDGET_SECONDS": budget,
        # until_the_job_ends: the verification must go through its (lost) task message, not run inline
        "ERASURE_VERIFY_INLINE": "1" if outage == "one_second" else "0",
    }
    worker = start_worker("redis", extra_env=env, beat=True)
    url, _ = request_through_api(staff_api, user_ids=[subject.user_id])
    job_id = _job_id(staff_api, url)

    # when: Redis dies mid-job (queue, unacked messages, everything lost) and comes back empty
    _mid_job(job_id, len(subject.ids))
    private_redis.kill()
    at_kill = deletion_job_get(job_id=job_id).deleted_count
    if outage == "one_second":
        time.sleep(1)
    else:
        wait_for(lambda: DeletionJob.objects.get(id=job_id).is_finished, timeout=60, message="job end")
        time.sleep(1)
    private_redis.start()
    detail = wait_closed(staff_api, url, timeout=120)

    # then
    assert at_kill < len(subject.ids)
    subject.assert_erased(detail)
    log = worker.log()
    assert "redis" in log.lower()  # the worker did see the broker go away
    if outage == "until_the_job_ends":
        assert "re-enqueued stale verifications" in log  # the lost verify message was sent again


def _worker_backends() -> list[int]:
    with connection.cursor() as cur:
        cur.execute(
            """SELECT pid FROM pg_stat_activity
               WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"""
        )
        return [pid for (pid,) in cur.fetchall()]


@pytest.mark.worker
def test_the_workers_database_backend_terminated_mid_batch(staff_api, start_worker):
    # given
    subject = Subject("pgkill", 8_000)
    worker = start_worker("pg", extra_env={"DELETION_BATCH_SIZE": "50"})
    url, _ = request_through_api(staff_api, user_ids=[subject.user_id])
    job_id = _job_id(staff_api, url)

    # when: the worker's backend is terminated twice while the job runs
    terminated = 0
    for fraction in (0.2, 0.6):
        sleep_until(
            lambda f=fraction: deletion_job_get(job_id=job_id).deleted_count > f * len(subject.ids),
            timeout=60,
        )
        with connection.cursor() as cur:
            for pid in _worker_backends():
                cur.execute("SELECT pg_terminate_backend(%s)", [pid])
                terminated += cur.fetchone()[0]
    detail = wait_closed(staff_api, url, timeout=120)

    # then: the task retried and resumed from its saved cursor
    assert terminated >= 2
    subject.assert_erased(detail)
    job = DeletionJob.objects.get(id=job_id)
    assert job.status == "SUCCEEDED"
    assert "retry" in worker.log().lower()


@pytest.mark.worker
def test_two_concurrent_requests_for_one_subject_both_finish_consistently(staff_api, start_worker):
    # given: two requests for the same subject, both scoped before either starts; two workers
    subject = Subject("twice", 4_000)
    start_worker("c1", extra_env={"DELETION_BATCH_SIZE": "50"})
    start_worker("c2", extra_env={"DELETION_BATCH_SIZE": "50"})
    url_a, scoped_a = request_through_api(staff_api, user_ids=[subject.user_id], approve=False)
    url_b, scoped_b = request_through_api(staff_api, user_ids=[subject.user_id], approve=False)
    assert scoped_a["counts"]["scoped_total"] == scoped_b["counts"]["scoped_total"] == 4_003

    # when: both are approved at once
    assert staff_api.post(url_a + "approve/", {}, format="json").status_code == 200
    assert staff_api.post(url_b + "approve/", {}, format="json").status_code == 200
    a = wait_closed(staff_api, url_a, timeout=120)
    b = wait_closed(staff_api, url_b, timeout=120)

    # then: both verified; between them every memory deleted exactly once; each saw the held ones
    subject.assert_erased(a, single_job=False)
    subject.assert_erased(b, single_job=False)
    # both jobs really ran at the same time (which one deletes a given memory is a race: the other one waits for
    # its row lock, finds it deleted and goes on; the faster job may well delete them all)
    job_a, job_b = (DeletionJob.objects.get(id=x["deletion_job"]) for x in (a, b))
    assert job_a.started_at < job_b.finished_at and job_b.started_at < job_a.finished_at
    assert a["counts"]["deleted_count"] + b["counts"]["deleted_count"] == len(subject.ids)
    assert a["counts"]["held_count"] == b["counts"]["held_count"] == len(subject.held_ids)
    assert a["counts"]["history_purged_count"] + b["counts"]["history_purged_count"] == subject.update_rows
    # each request's digest covers the ids its own jobs deleted; together they are the subject's, none twice
    ids_a, ids_b = request_tombstone_ids(a["reference"]), request_tombstone_ids(b["reference"])
    assert not set(ids_a) & set(ids_b) and sorted(ids_a + ids_b) == sorted(subject.ids)


class AgentWriter(threading.Thread):
    """An agent that keeps writing memories for the subject (service, and HTTP when the memory API exists)."""

    def __init__(self, user_id: str, api_key: str):
        super().__init__(daemon=True)
        self.user_id = user_id
        self.api_key = api_key
        self.stop = threading.Event()
        self.log: list[tuple[float, float, str, str]] = []  # (started, ended, channel, outcome)
        try:
            resolve("/v3/memories/add/")
            self.http = True
        except Resolver404:
            self.http = False

    def run(self) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {self.api_key}")
        i = 0
        try:
            while not self.stop.is_set():
                i += 1
                started = time.monotonic()
                if self.http and i % 2:
                    response = client.post(
                        "/v3/memories/add/",
                        {"messages": [{"role": "user", "content": f"http {i}"}], "user_id": self.user_id},
                        format="json",
                    )
                    outcome = "ok" if response.status_code == 200 else f"http {response.status_code}"
                    self.log.append((started, time.monotonic(), "http", outcome))
                else:
                    try:
                        memories_add(texts=[f"agent {i}"], user_id=self.user_id)
                        outcome = "ok"
                    except MemoryWriteBlocked as exc:
                        outcome = f"blocked {exc.kind}"
                    self.log.append((started, time.monotonic(), "service", outcome))
                time.sleep(0.005)
        finally:
            connections.close_all()


@pytest.mark.worker
def test_an_agent_writing_during_the_erasure_leaves_nothing_behind(staff_api, start_worker, api_key):
    # given: an agent writing for the subject, and an erasure with suppression (so the block never lifts)
    subject = Subject("agent", 3_000)
    start_worker("agent", extra_env={"DELETION_BATCH_SIZE": "50"})
    writer = AgentWriter(subject.user_id, api_key)
    writer.start()
    try:
        wait_for(
            lambda: any(o == "ok" for *_, o in writer.log), timeout=20, message="the agent's first write"
        )

        # when
        url, _ = request_through_api(staff_api, user_ids=[subject.user_id], suppress=True)
        approved = time.monotonic()
        detail = wait_closed(staff_api, url, timeout=120)
        time.sleep(0.5)
    finally:
        writer.stop.set()
        writer.join(timeout=30)

    # then: every write that began after the approval was refused; every earlier one was erased
    late = [entry for entry in writer.log if entry[0] >= approved]
    assert late, "the agent made no write while the erasure ran"
    assert all(outcome != "ok" for *_, outcome in late), [e for e in late if e[3] == "ok"]
    assert all(o.startswith("blocked") or o in ("http 403", "http 409", "http 423") for *_, o in late), {
        o for *_, o in late
    }
    written = sum(1 for *_, o in writer.log if o == "ok")
    assert written >= 1
    assert Memory.objects.filter(user_id=subject.user_id).exclude(id__in=subject.held_ids).count() == 0
    assert detail["state"] == "verified", detail
    assert detail["counts"]["deleted_count"] == len(subject.ids) + written
    assert detail["counts"]["held_count"] == len(subject.held_ids)
    assert detail["counts"]["history_purged_count"] == subject.update_rows  # the agent only added
    assert detail["verification"]["memories_remaining"] == 0
    # every memory deleted exactly once (the agent's included), and the digest covers them all
    mine = request_tombstone_ids(detail["reference"])
    assert len(mine) == len(set(mine)) == len(subject.ids) + written and set(subject.ids) <= set(mine)
    assert detail["counts"]["deleted_ids_digest"] == ids_digest(mine)
    assert tombstone_counts(mine) == dict.fromkeys(mine, 1) and history_rows(mine) == 0


@pytest.mark.django_db(transaction=True)
def test_two_deliveries_of_the_verification_at_once_count_the_stragglers_once():
    # given: a request in `deleted` with stragglers left to sweep (written despite everything), and the verify
    # task delivered twice at the same instant (a retry and a sweeper re-enqueue)
    from erasure.models import State
    from erasure.services import IllegalTransition, erasure_request_verify
    from tests.erasure.factories import request_in_state

    request = request_in_state(
        state=State.DELETED, user_ids=["twice-verified"], deleted_count=10, history_purged_count=3
    )
    stragglers = memories_add(texts=[f"straggler {i}" for i in range(40)], user_id="twice-verified")
    for memory in stragglers[:5]:  # five of them edited: five UPDATE rows to purge
        memory_update(memory=memory, text=f"{memory.text}, edited")
    straggler_ids = sorted(m.id for m in stragglers)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def deliver() -> None:
        try:
            barrier.wait()
            erasure_request_verify(request_id=request.id)
            outcomes.append("verified")
        except IllegalTransition:
            outcomes.append("already verified")
        finally:
            connections.close_all()

    # when
    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # then: one verified, the other saw it; the 40 swept stragglers are counted exactly once
    assert sorted(outcomes) == ["already verified", "verified"]
    request.refresh_from_db()
    assert request.state == "verified" and request.deleted_count == 50
    assert request.verification["final_sweep_deleted"] == 40
    assert request.history_purged_count == 3 + 5
    assert not Memory.objects.filter(user_id="twice-verified").exists()
    assert tombstone_counts(straggler_ids) == dict.fromkeys(straggler_ids, 1)
    assert history_rows(straggler_ids) == 0
    assert request.deleted_ids_digest == ids_digest(straggler_ids)  # the request's only job is the sweep
