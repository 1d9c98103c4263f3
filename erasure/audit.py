"""The tamper-evident audit trail: each entry's hash covers the previous entry's hash and its own canonical form.

    entry_hash = sha256(prev_hash_hex ‖ canonical_json({created_at, actor, action, request, reference, data}))

canonical_json is JSON with sorted keys and compact separators (ASCII-escaped), so any reader can recompute it.
Appends are serialised by a transaction-level advisory lock (taken by the SQL function that appends, migration
0051), so the chain has no forks under concurrency; the rows are append-only in PostgreSQL (migration
0050_proof_append_only: a trigger refuses UPDATE and DELETE).

django-auditlog rows are covered too: every LogEntry appends an "auditlog" entry holding a digest of the LogEntry
(erasure.auditlog), and an audit entry about a request also reconciles auditlog with the request's current row, so
changes made by compare-and-set UPDATEs (which fire no model signals) appear in auditlog as well.
"""

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from .canonical import canonical_json
from .models import AuditEntry, ErasureRequest

GENESIS = "0" * 64
_CHAIN_LOCK = 0x6175646974  # "audit"
MAX_DATA_BYTES = 16_384

# Keys that name personal data: they may carry only keyed hashes (pseudonyms). Anything else is a bug in the
# caller, so it is refused loudly.
FORBIDDEN_KEYS = frozenset(
    {
        "user_id",
        "user_ids",
        "email",
        "subject_email",
        "subject_user_ids",
        "text",
        "memory",
        "old_memory",
        "new_memory",
        "messages",
        "identity_note",
        "rejection_note",
        "extension_reason",
    }
)


_HEX64 = re.compile(r"[0-9a-f]{64}")


class AuditDataRefused(ValueError):
    """The audit data would carry personal data. The message names the key or the reason, never a value."""


def canonical(entry: AuditEntry) -> bytes:
    body = {
        "created_at": entry.created_at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "request": str(entry.request_id) if entry.request_id else None,
        "reference": entry.reference,
        "data": entry.data,
    }
    return canonical_json(body)


def entry_hash(prev_hash: str, entry: AuditEntry) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical(entry)).hexdigest()


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


def _pseudonymous(value: Any) -> bool:
    """None, a keyed hash (64 hex digits), or a list of them: what a personal key may carry."""
    if value is None or value == "" or value == []:
        return True
    if isinstance(value, str):
        return _HEX64.fullmatch(value) is not None
    if isinstance(value, list | tuple):
        return all(isinstance(v, str) and _HEX64.fullmatch(v) for v in value)
    return False


def _forbidden_key(value: Any) -> str | None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in FORBIDDEN_KEYS and not _pseudonymous(item):
                return str(key)
            found = _forbidden_key(item)
            if found:
                return found
    elif isinstance(value, list | tuple):
        for item in value:
            found = _forbidden_key(item)
            if found:
                return found
    return None


def _check_data(data: dict[str, Any], request: ErasureRequest | None) -> None:
    key = _forbidden_key(data)
    if key:
        raise AuditDataRefused(f"audit data may not hold the key {key!r} (personal data)")
    if len(canonical_json(data)) > MAX_DATA_BYTES:
        raise AuditDataRefused(f"audit data larger than {MAX_DATA_BYTES} bytes")
    if request is None:
        return
    # The subject's own identifiers, while the request still holds them in clear: none may reach the chain.
    identifiers = [v for v in [*(request.subject_user_ids or []), request.subject_email or ""] if v]
    if not identifiers:
        return
    for text in _strings(data):
        for ident in identifiers:
            if text == ident or (len(ident) >= 6 and ident in text):
                raise AuditDataRefused("audit data holds one of the subject's identifiers")


def _append(*, actor: str, action: str, request_id: Any, reference: str, data: dict[str, Any]) -> AuditEntry:
    """The one writer of the chain (must run inside a transaction): one call of the SQL function
    erasure_audit_append (migration 0051), which takes the chain's lock, links the entry to the latest one and
    inserts it with entry_hash(prev_hash, entry), the body hashed being canonical(entry) as computed here."""
    assert connection.in_atomic_block, "the chain's lock is held until the transaction ends"
    entry = AuditEntry(
        created_at=timezone.now(),
        actor=actor,
        action=action,
        request_id=request_id,
        reference=reference,
        data=data,
    )
    with connection.cursor() as cur:
        cur.execute(
            "SELECT o_id, o_prev, o_hash FROM erasure_audit_append(%s, %s, %s, %s, %s, %s, %s::jsonb, %s)",
            [_CHAIN_LOCK, entry.created_at, actor, action, request_id, reference, json.dumps(data),
             canonical(entry)],
        )  # fmt: skip
        entry.id, entry.prev_hash, entry.entry_hash = cur.fetchone()
    entry._state.adding = False
    entry._state.db = connection.alias
    return entry


@transaction.atomic(savepoint=False)  # a refused or failed entry aborts the caller's whole transaction
def audit_append(
    *, actor: str, action: str, request: ErasureRequest | None = None, data: dict[str, Any] | None = None
) -> AuditEntry:
    """Appends one entry to the chain. `data` must hold ids, states, counts, pseudonyms only: a forbidden key or
    one of the subject's identifiers raises AuditDataRefused (and rolls back the caller's transaction).

    Side effects: one AuditEntry row; for a request, a django-auditlog LogEntry with the request's changed
    non-personal fields and the action (which in turn appends its own "auditlog" chain entry)."""
    clean: dict[str, Any] = json.loads(json.dumps(data or {}, default=str))
    _check_data(clean, request)
    entry = _append(
        actor=actor,
        action=action,
        request_id=request.pk if request else None,
        reference=request.reference if request else "",
        data=clean,
    )
    if request is not None:
        from .auditlog import auditlog_sync_request

        auditlog_sync_request(request_id=request.pk, actor=actor, action=action, audit_entry_id=entry.id)
    return entry


def audit_chain_head() -> dict[str, Any]:
    """The latest entry (id and hash) — what a certificate pins as the chain head at issuance."""
    last = AuditEntry.objects.order_by("-id").values("id", "entry_hash").first()
    if last is None:
        return {"entry_id": None, "entry_hash": GENESIS}
    return {"entry_id": last["id"], "entry_hash": last["entry_hash"]}


@dataclass
class ChainReport:
    ok: bool
    entries: int
    broken_id: int | None = None
    reason: str = ""


def audit_chain_recompute(*, chunk_size: int = 2000) -> ChainReport:
    """Streams the chain in id order, recomputing every hash and checking every link, and checks each chained
    django-auditlog row against its digest. Memory use is bounded by chunk_size, not by the chain's length."""
    from .auditlog import logentry_digests, unchained_logentry

    prev = GENESIS
    count = 0
    pending: list[AuditEntry] = []  # "auditlog" entries awaiting a batched LogEntry check

    def check_pending() -> ChainReport | None:
        digests = logentry_digests([int(e.data.get("logentry_id", 0)) for e in pending])
        for e in pending:
            actual = digests.get(int(e.data.get("logentry_id", 0)))
            if actual is None:
                return ChainReport(
                    False, count, e.id, f"auditlog entry {e.data.get('logentry_id')} is missing"
                )
            if actual != e.data.get("sha256"):
                return ChainReport(
                    False, count, e.id, f"auditlog entry {e.data.get('logentry_id')} was altered"
                )
        pending.clear()
        return None

    for entry in AuditEntry.objects.order_by("id").iterator(chunk_size=chunk_size):
        reason = ""
        if entry.prev_hash != prev:
            reason = "prev_hash does not link to the previous entry (an entry was removed or altered)"
        elif entry_hash(entry.prev_hash, entry) != entry.entry_hash:
            reason = "entry_hash does not match the entry's content"
        if reason:
            return check_pending() or ChainReport(False, count, entry.id, reason)
        prev = entry.entry_hash
        count += 1
        if entry.action == "auditlog":
            pending.append(entry)
            if len(pending) >= chunk_size:
                failure = check_pending()
                if failure:
                    return failure
    failure = check_pending()
    if failure:
        return failure
    unchained = unchained_logentry()
    if unchained is not None:
        return ChainReport(False, count, None, f"auditlog entry {unchained} is not covered by the chain")
    return ChainReport(True, count)
