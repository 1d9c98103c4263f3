"""An erasure request end to end through the Erasure API, with a real Celery worker doing the deletion and the
verification: create → verify identity → scope → approve → verified."""

import pytest

from erasure.models import AuditEntry, ErasureRequest
from memories.engine import ids_digest
from memories.models import DeletionJob, Memory, MemoryHistory, WriteBlock
from memories.pseudonyms import pseudonym
from memories.selectors import memory_history
from memories.services import MemoryWriteBlocked, memories_add, memory_update
from tests.conftest import wait_for
from tests.e2e.helpers import request_tombstone_ids, tombstone_counts

BASE = "/api/v1/erasure-requests/"


@pytest.mark.worker
def test_erasure_request_end_to_end_with_a_real_worker(staff_api, start_worker):
    # given: the subject's memories across two user_ids, one held memory, and another subject's memories
    subject = memories_add(
        texts=[f"subject fact {i}" for i in range(120)], user_id="e2e-subj", agent_id="bot"
    )
    subject += memories_add(texts=["alias fact"], user_id="e2e-subj-alias", run_id="run-1")
    held = memories_add(texts=["under hold"], user_id="e2e-subj", agent_id="legal")
    others = memories_add(texts=["not the subject"] * 5, user_id="e2e-other", agent_id="bot")
    # edits: 4 UPDATE rows on memories the erasure deletes, 1 on the held memory (kept with it)
    for memory, text in [
        (subject[0], "subject fact 0, corrected"),
        (subject[0], "subject fact 0, corrected again"),
        (subject[57], "subject fact 57, corrected"),
        (subject[120], "alias fact, corrected"),
        (held[0], "under hold, amended"),
    ]:
        memory_update(memory=memory, text=text)
    response = staff_api.post(
        "/api/v1/legal-holds/",
        {"scope": {"user_id": "e2e-subj", "agent_id": "legal"}, "reason": "art17_3_e"},
        format="json",
    )
    assert response.status_code == 201
    start_worker("e2e", extra_env={"DELETION_BATCH_SIZE": "50"})

    # when: the privacy team works the request through the API
    response = staff_api.post(
        BASE,
        {
            "regulation": "gdpr",
            "subject": {"user_ids": ["e2e-subj", "e2e-subj-alias"], "email": "subject@example.test"},
            "suppress": True,
        },
        format="json",
    )
    assert response.status_code == 201 and response.json()["state"] == "received"
    url = f"{BASE}{response.json()['id']}/"
    assert staff_api.post(url + "verify-identity/", {"note": "ok"}, format="json").status_code == 200
    scoped = staff_api.post(url + "scope/", {}, format="json").json()
    assert scoped["state"] == "scoped"
    assert scoped["counts"]["scoped_total"] == 122 and scoped["counts"]["scoped_held"] == 1
    assert scoped["counts"]["scoped_by_agent"] == {"bot": 120, "legal": 1, "": 1}
    assert staff_api.post(url + "approve/", {}, format="json").status_code == 200
    # while the erasure runs (or after), the subject cannot write
    with pytest.raises(MemoryWriteBlocked):
        memories_add(texts=["sneaking in"], user_id="e2e-subj")

    detail = wait_for(
        lambda: (d := staff_api.get(url).json())["state"] in ("verified", "failed") and d,
        timeout=90,
        message="request verified",
    )

    # then: verified, with exact counts and a clean verification
    assert detail["state"] == "verified", detail
    counts = detail["counts"]
    assert counts["deleted_count"] == 121 and counts["held_count"] == 1
    deleted_ids = sorted(m.id for m in subject)
    assert counts["history_purged_count"] == 4  # the history rows deleted: the UPDATE events
    assert counts["deleted_ids_digest"] == ids_digest(deleted_ids)
    assert detail["verification"]["memories_remaining"] == 0
    assert detail["verification"]["history_text_remaining"] == 0
    assert detail["verification"]["memories_held"] == 1
    assert detail["progress"]["job_status"] == "SUCCEEDED" and detail["allowed_actions"] == []
    assert all(detail["timestamps"][k] for k in ("received_at", "scoped_at", "approved_at", "deleted_at"))
    assert detail["timestamps"]["verified_at"]
    # the completion notice is sent by its task after the verification commits; notified_at records the sending
    wait_for(lambda: staff_api.get(url).json()["timestamps"]["notified_at"], message="the completion notice")
    # nothing of the subject remains but the held memory; other subjects untouched
    assert list(Memory.objects.filter(user_id__in=["e2e-subj", "e2e-subj-alias"])) == held
    assert Memory.objects.filter(user_id="e2e-other").count() == len(others)
    # the deleted memories' history rows are gone; each has exactly one content-free DELETE event (tombstone)
    assert not MemoryHistory.objects.filter(memory_id__in=deleted_ids).exists()
    assert request_tombstone_ids(detail["reference"]) == deleted_ids
    assert tombstone_counts(deleted_ids) == dict.fromkeys(deleted_ids, 1)
    for memory_id in deleted_ids:
        events = memory_history(memory_id=memory_id)
        assert events is not None and len(events) == 1, (memory_id, events)
        assert (events[0].event, events[0].old_memory, events[0].new_memory) == ("DELETE", None, None)
    for memory in (subject[0], subject[57], subject[1]):
        response = staff_api.get(f"/v1/memories/{memory.id}/history/")
        assert response.status_code == 200, response.content
        [event] = response.json()
        assert (event["event"], event["old_memory"], event["new_memory"]) == ("DELETE", None, None)
    # the held memory keeps its history, text included
    assert [(e.event, e.new_memory) for e in memory_history(memory_id=held[0].id) or []] == [
        ("ADD", "under hold"),
        ("UPDATE", "under hold, amended"),
    ]
    assert tombstone_counts([held[0].id, *[m.id for m in others]]) == {}
    assert DeletionJob.objects.get(id=detail["deletion_job"]).scope is None
    # suppression: new memories for the user_id are refused; only keyed hashes are kept
    with pytest.raises(MemoryWriteBlocked):
        memories_add(texts=["back again"], user_id="e2e-subj")
    blocks = list(WriteBlock.objects.values_list("kind", "user_id_hmac"))
    assert sorted(blocks) == sorted(
        [("suppression", pseudonym("e2e-subj")), ("suppression", pseudonym("e2e-subj-alias"))]
    )
    # the request is pseudonymised; the subject was told
    request = ErasureRequest.objects.get(id=detail["id"])
    assert request.subject_user_ids == [] and request.subject_email == "" and request.pseudonymised_at
    assert detail["subject"]["user_ids"] == [] and "e2e-subj" not in str(staff_api.get(url).json())
    assert request.subject_pseudonyms["user_ids"] == sorted(
        [pseudonym("e2e-subj"), pseudonym("e2e-subj-alias")]
    )
    # no audit entry holds a raw identifier
    audit = " ".join(str(e.data) for e in AuditEntry.objects.all())
    assert "e2e-subj" not in audit and "subject@example.test" not in audit
    actions = [e["action"] for e in detail["events"]]
    assert actions[-4:] == [
        "request.deleted",
        "request.verified",
        "request.pseudonymised",
        "certificate.issued",
    ]
