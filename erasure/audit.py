"""The tamper-evident audit trail: each entry's hash covers the previous entry's hash and its own canonical form.

    entry_hash = sha256(prev_hash ‖ canonical_json({id-independent fields}))

Appends are serialised by a transaction-level advisory lock, so the chain has no forks under concurrency.
"""

import hashlib
import json
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from .models import AuditEntry, ErasureRequest

GENESIS = "0" * 64
_CHAIN_LOCK = 0x6175646974  # "audit"


def canonical(entry: AuditEntry) -> bytes:
    body = {
        "created_at": entry.created_at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "request": str(entry.request_id) if entry.request_id else None,
        "reference": entry.reference,
        "data": entry.data,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def entry_hash(prev_hash: str, entry: AuditEntry) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical(entry)).hexdigest()


@transaction.atomic
def audit_append(
    *, actor: str, action: str, request: ErasureRequest | None = None, data: dict[str, Any] | None = None
) -> AuditEntry:
    """Appends one entry to the chain. `data` must hold ids, states, counts, pseudonyms only."""
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK])
    last = AuditEntry.objects.order_by("-id").values_list("entry_hash", flat=True).first()
    entry = AuditEntry(
        created_at=timezone.now(),
        actor=actor,
        action=action,
        request=request,
        reference=request.reference if request else "",
        data=json.loads(json.dumps(data or {}, default=str)),
        prev_hash=last or GENESIS,
    )
    entry.entry_hash = entry_hash(entry.prev_hash, entry)
    entry.save(force_insert=True)
    return entry
