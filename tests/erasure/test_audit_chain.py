"""The hash-chained, append-only audit trail: appends link up, the trigger refuses changes, verify_audit_chain
finds an altered or a removed entry."""

import threading
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from erasure.audit import GENESIS, AuditDataRefused, audit_append, audit_chain_recompute, entry_hash
from erasure.models import AuditEntry
from tests.erasure.factories import CANARY_EMAIL, CANARY_USER, canary_request


def run_verify() -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("verify_audit_chain", "--chunk-size", "3", stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def append_some(n: int) -> list[AuditEntry]:
    return [audit_append(actor="staff", action="test.step", data={"step": i}) for i in range(n)]


def with_trigger_disabled(table: str, sql: str, params: list) -> None:
    with transaction.atomic(), connection.cursor() as cur:
        # Fire the deferred FK checks first: ALTER TABLE refuses to run with trigger events pending.
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cur.execute(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only")
        cur.execute(sql, params)
        cur.execute(f"ALTER TABLE {table} ENABLE TRIGGER {table}_append_only")
        cur.execute("SET CONSTRAINTS ALL DEFERRED")


def test_appends_link_each_entry_to_the_previous_hash(db):
    entries = append_some(4)

    rows = list(AuditEntry.objects.order_by("id"))
    assert rows[0].prev_hash == GENESIS
    for before, after in zip(rows, rows[1:], strict=False):
        assert after.prev_hash == before.entry_hash
    assert all(entry_hash(r.prev_hash, r) == r.entry_hash for r in rows)
    assert [e.id for e in entries] == [r.id for r in rows]


def test_verify_audit_chain_reports_an_intact_chain(db):
    append_some(7)

    code, out, _ = run_verify()

    assert code == 0
    assert out.strip() == f"audit chain intact: {AuditEntry.objects.count()} entries"


def test_verify_audit_chain_on_an_empty_chain(db):
    assert run_verify()[:2] == (0, "audit chain intact: 0 entries\n")


@pytest.mark.parametrize("table", ["erasure_auditentry", "auditlog_logentry"])
def test_trigger_refuses_raw_update_and_delete(db, table):
    canary_request(state="received")  # writes a LogEntry (and its chain entry)
    append_some(1)
    with connection.cursor() as cur:
        cur.execute(f"SELECT max(id) FROM {table}")
        (row_id,) = cur.fetchone()
    column = "action" if table == "erasure_auditentry" else "object_repr"

    for sql in (
        f"UPDATE {table} SET {column} = 'forged' WHERE id = %s",
        f"DELETE FROM {table} WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cur,
        ):
            cur.execute(sql, [row_id])

    with connection.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {table} WHERE id = %s AND {column} <> 'forged'", [row_id])
        assert cur.fetchone()[0] == 1


def test_orm_delete_of_an_audit_entry_is_refused(db):
    entry = append_some(1)[0]
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEntry.objects.filter(id=entry.id).delete()
    assert AuditEntry.objects.filter(id=entry.id).exists()


def test_an_altered_entry_is_named_by_verify(db):
    entries = append_some(6)
    victim = entries[3]
    with_trigger_disabled(
        "erasure_auditentry",
        "UPDATE erasure_auditentry SET data = %s WHERE id = %s",
        ['{"step": 99}', victim.id],
    )

    code, _, err = run_verify()

    assert code == 1
    assert f"entry {victim.id}:" in err and "entry_hash does not match" in err


def test_a_rehashed_entry_breaks_the_next_link(db):
    # An attacker who recomputes the altered entry's own hash still breaks the link from the next entry.
    entries = append_some(5)
    victim = entries[2]
    victim.data = {"step": 42}
    forged = entry_hash(victim.prev_hash, victim)
    with_trigger_disabled(
        "erasure_auditentry",
        "UPDATE erasure_auditentry SET data = %s, entry_hash = %s WHERE id = %s",
        ['{"step": 42}', forged, victim.id],
    )

    code, _, err = run_verify()

    assert code == 1 and f"entry {entries[3].id}:" in err and "prev_hash" in err


def test_a_deleted_middle_entry_is_detected(db):
    entries = append_some(6)
    with_trigger_disabled(
        "erasure_auditentry", "DELETE FROM erasure_auditentry WHERE id = %s", [entries[2].id]
    )

    code, _, err = run_verify()

    assert code == 1
    assert f"entry {entries[3].id}:" in err and "removed or altered" in err


def test_audit_append_refuses_personal_keys_and_the_subjects_identifiers(db):
    request = canary_request(state="received")
    before = AuditEntry.objects.count()

    # (each call in its own block: a refusal aborts the caller's whole transaction, as documented)
    with pytest.raises(AuditDataRefused, match="'email'"), transaction.atomic():
        audit_append(actor="t", action="x", data={"nested": [{"email": "someone@example.org"}]})
    with pytest.raises(AuditDataRefused) as exc, transaction.atomic():
        audit_append(actor="t", action="x", request=request, data={"note": f"about {CANARY_USER}"})
    assert CANARY_USER not in str(exc.value)
    with pytest.raises(AuditDataRefused), transaction.atomic():
        audit_append(actor="t", action="x", request=request, data={"who": CANARY_EMAIL})

    assert AuditEntry.objects.count() == before


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_never_fork_the_chain():
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(10):
                audit_append(actor=f"t{n}", action="test.concurrent", data={"i": i})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert not errors
    report = audit_chain_recompute(chunk_size=7)
    assert report.ok and report.entries == 40


def test_personal_keys_may_carry_pseudonyms(db):
    from memories.pseudonyms import pseudonym

    entry = audit_append(
        actor="t", action="request.created", data={"subject": {"user_ids": [pseudonym("u")], "email": None}}
    )
    assert entry.data["subject"]["user_ids"] == [pseudonym("u")]
