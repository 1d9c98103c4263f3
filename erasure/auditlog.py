"""django-auditlog, registered without residue, and chained into the tamper-evident audit trail.

Rules (DESIGN.md "Proof without residue"):
- Each registered model names every field as logged, fully masked or excluded. Personal or free-text fields are
  fully masked with a constant (auditlog's own mask_str keeps half the string, so it is never used): the LogEntry
  says the field changed, never what it held. serialize_data stays off, because auditlog masks only string values
  in serialized data (a list of user ids or a scope dict would be copied in clear).
- The memory store's content models are never registered; startup fails if settings would register them
  (AUDITLOG_INCLUDE_ALL_MODELS or AUDITLOG_INCLUDE_TRACKING_MODELS).
- Every LogEntry appends one "auditlog" entry to the hash chain with a sha256 of the LogEntry's canonical form, so
  verify_audit_chain detects an altered, removed or unchained auditlog row.
- The erasure services move requests by compare-and-set UPDATEs, which fire no model signals; audit_append calls
  auditlog_sync_request, which writes a LogEntry with the fields that changed since auditlog last saw the row.
"""

import hashlib
import ipaddress
from typing import Any

from auditlog.diff import get_field_value
from auditlog.models import LogEntry
from auditlog.registry import auditlog
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, models, transaction
from django.db.models.signals import post_save
from django.utils.encoding import smart_str

from memories.models import ApiKey, DeletionJob, LegalHold, Memory, MemoryHistory, Store, StoreJob, StoreJobId

from .canonical import canonical_json
from .models import ErasureRequest

REDACTED = "[redacted]"
MASK_CALLABLE = "erasure.auditlog.mask_fully"

# Never registered: they hold memory text or the subject's identifiers in clear.
NEVER_REGISTERED: tuple[type[models.Model], ...] = (Memory, MemoryHistory, DeletionJob, StoreJob, StoreJobId)

# model -> (logged fields, fully masked fields, excluded fields); together they name every concrete field.
POLICY: dict[type[models.Model], tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    ErasureRequest: (
        (
            "reference", "regulation", "state", "channel", "created_by", "subject_pseudonyms",
            "scope_pseudonymised", "suppress", "identity_status", "identity_verified_by", "received_at",
            "acknowledged_at", "identity_verified_at", "scoped_at", "approved_at", "deleted_at", "verified_at",
            "rejected_at", "cancelled_at", "failed_at", "notified_at", "pseudonymised_at", "approved_by",
            "due_at", "acknowledge_due_at", "extended_at", "scoped_total", "scoped_held", "deletion_job",
            "deleted_count", "held_count", "history_purged_count", "deleted_ids_digest", "verification",
            "rejection_reason", "failure_reason", "subject_confirmed_pseudonyms",
            "scoped_by", "assigned_to",  # console
        ),
        (
            "subject_user_ids", "subject_email", "scope", "scoped_by_agent", "scoped_by_run", "identity_note",
            "rejection_note", "extension_reason", "scoped_stores",
            "scoped_by_user",  # console
        ),
        ("id", "status_token_hash", "updated_at"),
    ),
    LegalHold: (
        ("reason", "scope_pseudonymised", "placed_by", "placed_at", "memories_held", "lifted_by", "lifted_at"),
        ("note",),
        ("id", "scope"),  # the clear scope of an active hold names subjects: never in auditlog
    ),
    # A store's config is masked (hosts, paths); its encrypted secrets are not even masked: excluded.
    Store: (
        ("name", "kind", "enabled", "last_check_ok", "last_check_at", "created_at"),
        ("config", "last_check_detail"),
        ("id", "secrets_encrypted", "updated_at"),
    ),
    ApiKey: (
        ("name", "key_prefix", "is_staff", "created_at", "revoked_at"),
        (),
        ("id", "key_hash", "last_used_at"),
    ),
}  # fmt: skip


def mask_fully(value: str) -> str:
    """auditlog mask_callable: the whole value, whatever its length (so not even the length leaks)."""
    return REDACTED


def auditlog_register() -> None:
    """Registers the erasure models with auditlog and chains LogEntry rows. Called from ErasureConfig.ready().
    Raises ImproperlyConfigured if a memory-content model is (or would be) registered."""
    if getattr(settings, "AUDITLOG_INCLUDE_ALL_MODELS", False):
        raise ImproperlyConfigured(
            "AUDITLOG_INCLUDE_ALL_MODELS would log memory text and subject identifiers; register models "
            "explicitly in erasure/auditlog.py"
        )
    for model, (logged, masked, excluded) in POLICY.items():
        auditlog.unregister(model)
        auditlog.register(
            model,
            include_fields=[*logged, *masked],
            exclude_fields=list(excluded),
            mask_fields=list(masked),
            mask_callable=MASK_CALLABLE,
        )
    registered = [m._meta.label for m in NEVER_REGISTERED if auditlog.contains(m)]
    if registered:
        raise ImproperlyConfigured(f"never register with auditlog: {', '.join(registered)}")
    post_save.connect(_chain_logentry, sender=LogEntry, dispatch_uid="erasure.auditlog.chain")


# --- chaining ------------------------------------------------------------------------------------------------


def _canonical_ip(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return str(value)


def logentry_canonical(entry: LogEntry) -> bytes:
    """Every stored column of the LogEntry, in canonical JSON (the same form from memory and from the database)."""
    body = {
        "id": entry.pk,
        "content_type": entry.content_type_id,
        "object_pk": str(entry.object_pk),
        "object_id": entry.object_id,
        "object_repr": entry.object_repr,
        "serialized_data": entry.serialized_data,
        "action": entry.action,
        "changes_text": entry.changes_text,
        "changes": entry.changes,
        "actor": entry.actor_id,
        "actor_email": entry.actor_email,
        "cid": entry.cid,
        "remote_addr": _canonical_ip(entry.remote_addr),
        "remote_port": entry.remote_port,
        "timestamp": entry.timestamp.isoformat() if entry.timestamp else None,
        "additional_data": entry.additional_data,
    }
    return canonical_json(body)


def logentry_digest(entry: LogEntry) -> str:
    return hashlib.sha256(logentry_canonical(entry)).hexdigest()


def logentry_digests(ids: list[int]) -> dict[int, str]:
    return {e.pk: logentry_digest(e) for e in LogEntry.objects.filter(pk__in=ids)}


def unchained_logentry() -> int | None:
    """The lowest LogEntry id without its "auditlog" chain entry (an anti-join in the database), or None."""
    with connection.cursor() as cur:
        cur.execute(
            f"""SELECT l.id FROM {LogEntry._meta.db_table} l WHERE NOT EXISTS (
                    SELECT 1 FROM erasure_auditentry a
                    WHERE a.action = 'auditlog' AND (a.data->>'logentry_id')::bigint = l.id)
                ORDER BY l.id LIMIT 1"""
        )
        row = cur.fetchone()
    return int(row[0]) if row else None


def _chain_logentry(sender: Any, instance: LogEntry, created: bool, raw: bool = False, **kwargs: Any) -> None:
    if not created or raw:
        return
    from .audit import _append

    content_type = ContentType.objects.get_for_id(instance.content_type_id)
    # The reference ties the entry to its request for exports; the request FK is left empty so the request's own
    # event list (erasure steps) is not interleaved with auditlog bookkeeping.
    reference = ""
    if content_type.model_class() is ErasureRequest:
        reference = (instance.additional_data or {}).get("reference") or (
            ErasureRequest.objects.filter(pk=instance.object_pk).values_list("reference", flat=True).first()
            or ""
        )
    # No savepoint: a failure here must abort the whole transaction that wrote the LogEntry anyway.
    with transaction.atomic(savepoint=False):
        _append(
            actor="auditlog",
            action="auditlog",
            request_id=None,
            reference=reference,
            data={
                "logentry_id": instance.pk,
                "content_type": f"{content_type.app_label}.{content_type.model}",
                "object_pk": str(instance.object_pk),
                "action": instance.action,
                "sha256": logentry_digest(instance),
            },
        )


# --- requests moved by compare-and-set UPDATEs -----------------------------------------------------------------


def _logged_values(request: ErasureRequest) -> dict[str, str]:
    logged = POLICY[ErasureRequest][0]
    fields = {f.name: f for f in ErasureRequest._meta.concrete_fields}
    # The same string form auditlog's own diff stores (smart_str of get_field_value).
    return {name: smart_str(get_field_value(request, fields[name])) for name in logged}


def auditlog_sync_request(*, request_id: Any, actor: str, action: str, audit_entry_id: int) -> LogEntry:
    """Writes a LogEntry for one erasure step: the logged (non-personal) fields that changed since auditlog last
    recorded them — replayed from the request's earlier LogEntries — plus the step's name and actor.

    Side effects: one LogEntry row (and through it one chain entry)."""
    request = ErasureRequest.objects.get(pk=request_id)
    content_type = ContentType.objects.get_for_model(ErasureRequest)
    known = _logged_values(ErasureRequest())  # defaults: what a create entry leaves out
    history = LogEntry.objects.filter(content_type=content_type, object_pk=str(request.pk)).order_by("id")
    for changes in history.values_list("changes", flat=True):  # a request has a handful of entries
        for field, pair in (changes or {}).items():
            if field in known and isinstance(pair, list | tuple) and len(pair) == 2:
                known[field] = pair[1]
    current = _logged_values(request)
    changes = {k: [known[k], v] for k, v in current.items() if known[k] != v}
    return LogEntry.objects.log_create(
        request,
        force_log=True,
        action=LogEntry.Action.UPDATE,
        changes=changes,
        additional_data={
            "erasure_action": action,
            "actor": actor,
            "audit_entry_id": audit_entry_id,
            "reference": request.reference,
        },
    )
