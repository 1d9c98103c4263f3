"""The proof over a real lifecycle run (services + the deletion engine, synchronously): after `verified` and
pseudonymisation the certificate states the engine's exact figures, auditlog and the chain hold no identifier, the
chain verifies, and a later re-issue matches the first certificate."""

import json

from auditlog.models import LogEntry
from django.db import connection

from erasure.audit import audit_chain_recompute
from erasure.certificate import certificate_build, certificate_is_authentic
from erasure.models import ErasureRequest, State
from erasure.services import (
    erasure_request_approve,
    erasure_request_confirm_identity,
    erasure_request_create,
    erasure_request_scope,
    erasure_request_verify,
)
from memories import engine
from memories.models import DeletionJob, MemoryHistory, MemoryTombstone
from memories.pseudonyms import pseudonym
from memories.selectors import memory_history
from memories.services import legal_hold_place, memories_add, memory_update

SUBJECT = "flow-canary-subject-4411"
EMAIL = "flow.canary.4411@example.test"


def count_rows_with(table: str, needle: str) -> int:
    with connection.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {table} t WHERE t::text LIKE %s", [f"%{needle}%"])
        return int(cur.fetchone()[0])


def test_certificate_after_a_real_erasure(db, django_capture_on_commit_callbacks, staff_api):
    # given: the subject's memories (one held; some edited: 4 UPDATE events on deletable memories, 1 on the held
    # one) and a request worked through the lifecycle services
    facts = memories_add(texts=[f"fact {i}" for i in range(7)], user_id=SUBJECT, agent_id="bot-flow")
    [contract] = memories_add(texts=["contract"], user_id=SUBJECT, agent_id="legal")
    for memory, text in [
        (facts[0], "fact 0b"),
        (facts[0], "fact 0c"),
        (facts[3], "fact 3b"),
        (facts[6], "f6"),
    ]:
        memory_update(memory=memory, text=text)
    memory_update(memory=contract, text="contract, amended")
    legal_hold_place(
        scope={"user_id": SUBJECT, "agent_id": "legal"}, reason="art17_3_e", note="", placed_by="t"
    )
    request, _token = erasure_request_create(
        regulation="ccpa", user_ids=[SUBJECT], email=EMAIL, channel="api", actor="apikey:staff"
    )
    erasure_request_confirm_identity(request=request, actor="apikey:staff", note=f"called {EMAIL}")
    erasure_request_scope(request=request, actor="apikey:staff")
    erasure_request_approve(request=request, actor="apikey:staff")

    # when: the engine job runs and the verification completes
    with django_capture_on_commit_callbacks():
        engine.deletion_job_run(job_id=request.deletion_job_id, budget_seconds=float("inf"))
    erasure_request_verify(request_id=request.id)
    request = ErasureRequest.objects.get(id=request.id)
    first = certificate_build(request=request)
    response = staff_api.get(f"/api/v1/erasure-requests/{request.id}/certificate/")

    # then: the certificate states the engine's figures, from pseudonymised fields only
    assert request.state == State.VERIFIED and request.subject_user_ids == []
    job = DeletionJob.objects.get(id=request.deletion_job_id)
    cert = first["certificate"]
    assert (
        certificate_is_authentic(first)
        and response.status_code == 200
        and certificate_is_authentic(response.json())
    )
    assert cert["counts"] == {
        "scoped": 8,
        "scoped_held": 1,
        "deleted": 7,
        "held": 1,
        "history_rows_purged": 4,
    }
    deleted = sorted(m.id for m in facts)
    assert cert["deleted_ids_digest"]["sha256"] == job.digest == request.deleted_ids_digest
    assert request.deleted_ids_digest == engine.ids_digest(deleted)
    # the deleted memories: no history row left, exactly one content-free DELETE event each (the tombstone)
    assert not MemoryHistory.objects.filter(memory_id__in=deleted).exists()
    assert [t.ids for t in MemoryTombstone.objects.filter(job_id=job.id)] == [deleted]
    for memory_id in deleted:
        assert [(e.event, e.old_memory, e.new_memory) for e in memory_history(memory_id=memory_id)] == [
            ("DELETE", None, None)
        ]
    # the held memory keeps its history
    assert [e.event for e in memory_history(memory_id=contract.id)] == ["ADD", "UPDATE"]
    assert cert["subject_pseudonyms"]["user_ids"] == [pseudonym(SUBJECT)]
    assert cert["regulation"]["code"] == "ccpa"
    assert all(
        cert["timestamps"][k]
        for k in ("received_at", "scoped_at", "approved_at", "deleted_at", "verified_at")
    )
    assert cert["verified_audit_entry"] is not None and cert["verification"]["memories_remaining"] == 0
    assert SUBJECT not in json.dumps(first) and EMAIL not in json.dumps(first)
    # the re-issue (through the API) carries the same facts
    again = response.json()["certificate"]
    assert {k: v for k, v in again.items() if k != "issuance"} == {
        k: v for k, v in cert.items() if k != "issuance"
    }
    # no identifier in auditlog or the chain, every LogEntry chained, the chain intact
    for needle in (SUBJECT, EMAIL):
        assert count_rows_with("auditlog_logentry", needle) == 0
        assert count_rows_with("erasure_auditentry", needle) == 0
    states = [
        e.changes["state"][1]
        for e in LogEntry.objects.get_for_object(request).order_by("id")
        if e.changes and "state" in e.changes
    ]
    assert states == ["received", "scoped", "deleted", "verified"]  # the compare-and-set moves, reconciled
    report = audit_chain_recompute()
    assert report.ok, report
