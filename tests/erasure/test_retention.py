"""Memory retention policies: a run erases exactly the policy's scope older than its age through the deletion engine,
keeps held memories, and leaves its record and audit entries; the API, the dry run and the schedule."""

from datetime import timedelta

import pytest
from django.utils import timezone

from erasure.models import AuditEntry, RetentionPolicy, RetentionRun
from erasure.retention import (
    RetentionRunOpen,
    retention_policies_run_due,
    retention_policy_create,
    retention_policy_preview,
    retention_policy_run,
)
from memories import engine
from memories.engine import ids_digest
from memories.models import DeletionJob, Memory
from memories.services import legal_hold_place, memories_add
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db


def _aged(memories, days: int):
    Memory.objects.filter(id__in=[m.id for m in memories]).update(
        created_at=timezone.now() - timedelta(days=days)
    )
    return memories


def _store():
    """Old and recent memories of the `support` agent, old ones of another agent, one old held `support` one."""
    old = _aged(memories_add(texts=["o1", "o2", "o3"], user_id="u1", agent_id="support"), days=100)
    old += _aged(memories_add(texts=["o4"], user_id="u2", agent_id="support"), days=31)
    recent = _aged(memories_add(texts=["r1", "r2"], user_id="u1", agent_id="support"), days=29)
    other = _aged(memories_add(texts=["x1", "x2"], user_id="u1", agent_id="sales"), days=100)
    held = _aged(memories_add(texts=["h1"], user_id="u3", agent_id="support"), days=100)
    legal_hold_place(scope={"memory_ids": [str(held[0].id)]}, reason="art17_3_e", note="", placed_by="t")
    return old, recent, other, held


def _finish(run: RetentionRun) -> RetentionRun:
    engine.deletion_job_run(job_id=run.deletion_job_id, budget_seconds=float("inf"))
    run.refresh_from_db()
    return run


def test_a_run_erases_exactly_the_scope_older_than_the_age_and_keeps_held_memories():
    # given
    old, recent, other, held = _store()
    policy = retention_policy_create(
        name="support-30d", scope={"agent_id": "support"}, max_age_days=30, actor="t"
    )
    # when
    run = _finish(retention_policy_run(policy=policy, trigger="manual", actor="t"))
    # then: the run's record
    assert run.status == RetentionRun.Status.SUCCEEDED and run.finished_at >= run.started_at
    assert (run.deleted_count, run.held_count) == (4, 1)
    assert run.digest == ids_digest(sorted(m.id for m in old))
    assert DeletionJob.objects.get(id=run.deletion_job_id).kind == "retention"
    # and exactly those memories are gone
    left = set(Memory.objects.values_list("id", flat=True))
    assert left == {m.id for m in recent + other + held}
    # and the audit trail says so, with counts and pseudonyms only
    started = AuditEntry.objects.get(action="retention.run_started")
    finished = AuditEntry.objects.get(action="retention.run_finished")
    assert started.data["run"] == finished.data["run"] == str(run.id)
    assert finished.data["deleted"] == 4 and finished.data["deleted_ids_digest"] == run.digest
    created = AuditEntry.objects.get(action="retention_policy.created")
    assert "support" not in str(created.data)


def test_the_dry_run_shows_what_the_next_run_would_erase_and_changes_nothing():
    _store()
    policy = retention_policy_create(
        name="support-30d", scope={"agent_id": "support"}, max_age_days=30, actor="t"
    )
    before = Memory.objects.count()

    preview = retention_policy_preview(policy=policy)

    assert (preview["matching"], preview["would_delete"], preview["held"]) == (5, 4, 1)
    assert Memory.objects.count() == before and not RetentionRun.objects.exists()
    run = _finish(retention_policy_run(policy=policy, trigger="manual", actor="t"))
    assert run.deleted_count == preview["would_delete"]


def test_a_policy_without_scope_erases_every_memory_older_than_its_age():
    old, recent, other, held = _store()
    policy = retention_policy_create(name="all-60d", scope={}, max_age_days=60, actor="t")

    run = _finish(retention_policy_run(policy=policy, trigger="manual", actor="t"))

    assert run.deleted_count == 5  # o1–o3 and x1–x2 (o4 is 31 days old)
    assert set(Memory.objects.values_list("id", flat=True)) == {m.id for m in old[3:] + recent + held}


def test_a_second_run_while_one_is_going_is_refused_and_the_schedule_skips_it():
    policy = retention_policy_create(name="p", scope={"agent_id": "support"}, max_age_days=30, actor="t")
    disabled = retention_policy_create(name="off", scope={}, max_age_days=1, enabled=False, actor="t")
    run = retention_policy_run(policy=policy, trigger="manual", actor="t")

    with pytest.raises(RetentionRunOpen):
        retention_policy_run(policy=policy, trigger="manual", actor="t")
    assert retention_policies_run_due() == 0  # p is running, `off` is disabled
    _finish(run)
    assert retention_policies_run_due() == 1
    assert RetentionRun.objects.filter(policy=policy, trigger="schedule").count() == 1
    assert not disabled.runs.exists()


def test_the_api_creates_lists_runs_and_dry_runs_policies(staff_api):
    _store()
    created = staff_api.post(
        "/api/v1/retention-policies/",
        {"name": "support-30d", "scope": {"agent_id": "support"}, "max_age_days": 30},
        format="json",
    )
    assert created.status_code == 201, created.json()
    policy_id = created.json()["id"]
    assert [p["name"] for p in staff_api.get("/api/v1/retention-policies/").json()] == ["support-30d"]

    dry = staff_api.get(f"/api/v1/retention-policies/{policy_id}/dry-run/")
    started = staff_api.post(f"/api/v1/retention-policies/{policy_id}/run/")
    again = staff_api.post(f"/api/v1/retention-policies/{policy_id}/run/")

    assert dry.status_code == 200 and dry.json()["would_delete"] == 4
    assert started.status_code == 202 and started.json()["status"] == "running"
    assert again.status_code == 409 and again.json()["run"] == started.json()["id"]
    _finish(RetentionRun.objects.get(id=started.json()["id"]))
    runs = staff_api.get("/api/v1/retention-runs/", {"policy": policy_id}).json()["results"]
    assert [(r["status"], r["deleted"], r["held"]) for r in runs] == [("succeeded", 4, 1)]
    assert runs[0]["policy_name"] == "support-30d" and len(runs[0]["digest"]) == 64


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "p", "scope": {"colour": "red"}, "max_age_days": 30}, "scope"),
        ({"name": "p", "scope": {"memory_ids": ["x"]}, "max_age_days": 30}, "scope"),
        ({"name": "p", "scope": {"agent_id": ""}, "max_age_days": 30}, "scope"),
        ({"name": "p", "scope": {}, "max_age_days": 0}, "max_age_days"),
        ({"scope": {}, "max_age_days": 3}, "name"),
    ],
)
def test_a_bad_policy_is_400_naming_the_field(staff_api, body, field):
    response = staff_api.post("/api/v1/retention-policies/", body, format="json")
    assert response.status_code == 400 and field in response.json()
    assert not RetentionPolicy.objects.exists()


def test_a_plain_memory_key_gets_403(api):
    assert api.get("/api/v1/retention-policies/").status_code == 403
    assert api.get("/api/v1/retention-runs/").status_code == 403


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_run_asked_through_the_api_is_carried_out_by_a_real_worker(staff_api, start_worker):
    start_worker("retention")
    old = _aged(memories_add(texts=["o1", "o2"], user_id="u1", app_id="crm"), days=10)
    kept = memories_add(texts=["new"], user_id="u1", app_id="crm")
    policy = retention_policy_create(name="crm-7d", scope={"app_id": "crm"}, max_age_days=7, actor="t")

    response = staff_api.post(f"/api/v1/retention-policies/{policy.id}/run/")

    assert response.status_code == 202
    run = wait_for(
        lambda: RetentionRun.objects.filter(id=response.json()["id"], status="succeeded").first(),
        message="the retention run to succeed",
    )
    assert run.deleted_count == 2 and run.digest == ids_digest(sorted(m.id for m in old))
    assert list(Memory.objects.values_list("id", flat=True)) == [kept[0].id]
