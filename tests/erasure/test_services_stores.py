"""The erasure workflow across stores, at the service level: a request waits for every store's job before it is
`deleted` (counts added up), a failing store fails it by name, retry after a failed verification sends the stores'
jobs for another pass, scoping names a store it cannot reach."""

import pytest
from django.utils import timezone

from erasure.models import ErasureRequest, State
from erasure.services import erasure_request_job_finished, erasure_request_retry
from erasure.services.stores import enabled_stores
from memories.models import DeletionJob, Store, StoreJob
from memories.stores.crypto import secrets_encrypt
from memories.stores.jobs import DurableProgress, _succeed, ids_digest, store_job_fail
from tests.erasure.factories import request_in_state
from tests.remote_mem0 import free_port

pytestmark = pytest.mark.django_db


def vendor(**fields) -> Store:
    return Store.objects.create(
        name=fields.pop("name", "vendor"),
        kind=Store.Kind.MEM0_PLATFORM,
        config={"host": "https://x"},
        **fields,
    )


def approved_request_with_jobs() -> tuple[ErasureRequest, DeletionJob, StoreJob]:
    request = request_in_state(state=State.SCOPED, user_ids=["subject-s1"], approved_at=timezone.now())
    builtin_job = DeletionJob.objects.create(
        kind=DeletionJob.Kind.ERASURE,
        status=DeletionJob.Status.SUCCEEDED,
        requested_by=request.reference,
        deleted_count=7,
        held_count=1,
        history_purged_count=2,
    )
    ErasureRequest.objects.filter(id=request.id).update(deletion_job=builtin_job)
    request.refresh_from_db()
    store_job = StoreJob.objects.create(
        store=vendor(), requested_by=request.reference, scope={"user_id": "subject-s1"}, status="RUNNING"
    )
    return request, builtin_job, store_job


def test_the_request_is_deleted_only_when_every_stores_job_has_succeeded_with_counts_added_up():
    # given: the built-in store's job succeeded while the connected store's still runs
    request, builtin_job, store_job = approved_request_with_jobs()
    # when the engine's job reports
    erasure_request_job_finished(job=builtin_job)
    # then the request waits
    request.refresh_from_db()
    assert request.state == State.SCOPED and request.deleted_count is None
    # when the store's job records its ids and succeeds
    ids = ["0190a0e0-0000-7000-8000-000000000001", "0190a0e0-0000-7000-8000-000000000002"]
    DurableProgress(store_job, 10).checkpoint(deleted_ids=ids, state={"phase": "check"})
    DurableProgress(store_job, 10).checkpoint(deleted_ids=ids[:1], state={"phase": "done"})  # recorded once
    _succeed(store_job.id, verification={"memories": 0}, held=3)
    # then: deleted, with every store's counts added up
    request.refresh_from_db()
    assert request.state == State.DELETED
    assert (request.deleted_count, request.held_count, request.history_purged_count) == (9, 4, 2)
    store_job.refresh_from_db()
    assert store_job.deleted_count == 2 and store_job.digest == ids_digest(ids) and store_job.scope is None


def test_a_failing_store_fails_the_request_naming_it():
    request, _builtin_job, store_job = approved_request_with_jobs()
    store_job_fail(job_id=store_job.id, error="DELETE /v1/memories/: HTTP 503 after 3 attempts")
    request.refresh_from_db()
    assert request.state == State.FAILED
    assert request.failure_reason == "store vendor: DELETE /v1/memories/: HTTP 503 after 3 attempts"


def test_retry_after_a_failed_verification_sends_the_stores_jobs_for_another_pass():
    # given: a request that reached `deleted`, then failed at verification; its store's job had succeeded
    request, builtin_job, store_job = approved_request_with_jobs()
    StoreJob.objects.filter(id=store_job.id).update(status="SUCCEEDED", scope=None, state={"phase": "done"})
    ErasureRequest.objects.filter(id=request.id).update(state=State.FAILED, deleted_at=timezone.now())
    request.refresh_from_db()
    # when
    request = erasure_request_retry(request=request, actor="dpo")
    # then: the store's job runs again over the request's scope; the engine's job is left alone
    store_job.refresh_from_db()
    assert (
        store_job.status == "PENDING"
        and store_job.scope == {"user_id": ["subject-s1"]}
        and store_job.state == {}
    )
    assert request.state == State.SCOPED
    builtin_job.refresh_from_db()
    assert builtin_job.status == "SUCCEEDED"


def test_scoping_names_a_connected_store_it_cannot_reach(staff_api):
    request = request_in_state(state=State.RECEIVED, user_ids=["subject-s2"], identity_status="verified")
    Store.objects.create(
        name="unreachable",
        kind=Store.Kind.MEM0_PLATFORM,
        config={"host": f"http://127.0.0.1:{free_port()}", "retries": 0},
        secrets_encrypted=secrets_encrypt({"api_key": "k"}),
    )
    response = staff_api.post(f"/api/v1/erasure-requests/{request.id}/scope/", {}, format="json")
    assert response.status_code == 503, response.content
    assert response.json()["store"] == "unreachable" and "connection failed" in response.json()["error"]
    assert ErasureRequest.objects.get(id=request.id).state == State.RECEIVED


def test_disabled_stores_are_not_reached_and_the_builtin_store_always_is():
    vendor(name="off", enabled=False)
    on = vendor(name="on")
    assert [s.name for s in enabled_stores()] == ["builtin", on.name]
