"""Writes to the memory store (deletes go through memories.engine, never from here)."""

import datetime
import uuid
from collections.abc import Iterable
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from .holds import held_q, holds_mark
from .holds import legal_hold_lift as legal_hold_lift  # placed and lifted through this module too
from .holds import legal_hold_place as legal_hold_place
from .ids import uuid7
from .models import ENTITY_FIELDS, ApiKey, Memory, MemoryHistory, WriteBlock, content_hash
from .pseudonyms import pseudonym, pseudonymise_scope


class MemoryWriteBlocked(Exception):
    """A write for a user_id that is being erased (kind=erasure) or suppressed after erasure (kind=suppression)."""

    def __init__(self, kind: str):
        self.kind = kind
        super().__init__(kind)


class MemoryImmutable(Exception):
    pass


def _subject_lock_key(user_id: str) -> int:
    return int(pseudonym(user_id)[:15], 16)


def _lock_subjects(user_ids: Iterable[str], *, shared: bool) -> None:
    """Transaction-level advisory locks per user_id: adds take them shared, placing a write block takes them
    exclusive, so once a block commits no add that missed it can still be in flight. Sorted to avoid deadlocks."""
    fn = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    keys = sorted({_subject_lock_key(u) for u in user_ids if u})
    if keys:
        with connection.cursor() as cur:
            cur.execute(f"SELECT {fn}(k) FROM unnest(%s::bigint[]) AS k", [keys])


def _block_covers(scope: dict[str, Any], entities: dict[str, Any]) -> bool:
    """Whether a write with these entity ids and metadata falls inside a block's pseudonymised scope: each entity
    key of the scope must match (its keyed hash is listed), and the metadata must contain the scope's pairs (the
    engine's containment), compared as keyed hashes. An empty scope covers every write."""
    for key, hashes in scope.items():
        if key == "metadata":
            metadata = entities.get("metadata")
            if not isinstance(metadata, dict):
                return False
            written = {pseudonym(k): pseudonym(repr(v)) for k, v in metadata.items()}
            if any(written.get(k) != v for k, v in (hashes or {}).items()):
                return False
        elif key in ENTITY_FIELDS:
            value = entities.get(key)
            if value is None or pseudonym(value) not in hashes:
                return False
    return True


def _check_write_allowed(user_ids: Iterable[str], **entities: Any) -> None:
    """Raises MemoryWriteBlocked when a block of these user_ids covers a write with these other entity ids
    (agent_id, app_id, run_id) and metadata: a block placed by an erasure narrowed to one agent refuses only that
    agent's writes."""
    user_ids = [u for u in user_ids if u]
    if not user_ids:
        return
    _lock_subjects(user_ids, shared=True)
    blocks = WriteBlock.objects.filter(user_id_hmac__in=[pseudonym(u) for u in user_ids]).values_list(
        "kind", "scope_pseudonymised"
    )
    kinds = {kind for kind, scope in blocks if _block_covers(scope or {}, entities)}
    if WriteBlock.Kind.SUPPRESSION in kinds:
        raise MemoryWriteBlocked(WriteBlock.Kind.SUPPRESSION)
    if WriteBlock.Kind.ERASURE in kinds:
        raise MemoryWriteBlocked(WriteBlock.Kind.ERASURE)


def api_key_create(*, name: str, is_staff: bool = False) -> tuple[ApiKey, str]:
    """Creates a key; returns it with the raw key, which is not stored and cannot be shown again."""
    raw = ApiKey.generate()
    key = ApiKey.objects.create(
        name=name, key_prefix=raw[:10], key_hash=ApiKey.hash_key(raw), is_staff=is_staff
    )
    return key, raw


@transaction.atomic
def memories_add(
    *,
    texts: list[str],
    user_id: str | None = None,
    agent_id: str | None = None,
    app_id: str | None = None,
    run_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    categories: list[str] | None = None,
    immutable: bool = False,
    expiration_date: datetime.date | None = None,
) -> list[Memory]:
    """Stores each text as one memory (its ADD history event is derived from the row: selectors.memory_history).
    Raises MemoryWriteBlocked for a user_id under erasure or suppression. Side effects: Memory rows."""
    _check_write_allowed(
        [user_id] if user_id else [], agent_id=agent_id, app_id=app_id, run_id=run_id, metadata=metadata
    )
    now = timezone.now()
    memories = [
        Memory(
            id=uuid7(),
            text=text,
            hash=content_hash(text),
            user_id=user_id,
            agent_id=agent_id,
            app_id=app_id,
            run_id=run_id,
            metadata=metadata,
            categories=categories or [],
            immutable=immutable,
            expiration_date=expiration_date,
            created_at=now,
            updated_at=now,
        )
        for text in texts
    ]
    Memory.objects.bulk_create(memories)
    holds_mark(memory_ids=[m.id for m in memories])  # a memory written into an active hold's scope is held
    return memories


_UNSET: Any = object()


@transaction.atomic
def memory_update(
    *,
    memory: Memory,
    text: str | None = None,
    metadata: Any = _UNSET,
    expiration_date: Any = _UNSET,
) -> Memory:
    """Updates text/metadata/expiration of a mutable memory, with an UPDATE history event when the text changes.
    Raises MemoryImmutable, MemoryWriteBlocked."""
    memory = Memory.objects.select_for_update().get(pk=memory.pk)
    if memory.immutable:
        raise MemoryImmutable()
    _check_write_allowed(
        [memory.user_id] if memory.user_id else [],
        agent_id=memory.agent_id,
        app_id=memory.app_id,
        run_id=memory.run_id,
        metadata=metadata if metadata is not _UNSET else memory.metadata,
    )
    fields = ["updated_at"]
    if text is not None and text != memory.text:
        MemoryHistory.objects.create(
            memory_id=memory.id,
            event=MemoryHistory.Event.UPDATE,
            old_memory=memory.text,
            new_memory=text,
            categories=memory.categories,
        )
        memory.text = text
        memory.hash = content_hash(text)
        fields += ["text", "hash"]  # has_history: set by the history table's trigger (migration 0004)
    if metadata is not _UNSET:
        memory.metadata = metadata
        fields.append("metadata")
    if expiration_date is not _UNSET:
        memory.expiration_date = expiration_date
        fields.append("expiration_date")
    memory.save(update_fields=fields)
    if metadata is not _UNSET or expiration_date is not _UNSET:
        holds_mark(memory_ids=[memory.id])  # changed into an active hold's scope: held
    memory.refresh_from_db(fields=["updated_at"])
    return memory


@transaction.atomic
def write_block_place(
    *, user_ids: list[str], kind: str, reference: str, scope: dict[str, Any] | None = None
) -> None:
    """Refuses further writes for these user_ids, within `scope` (an erasure's narrowing: agent_id, app_id,
    run_id, metadata; none: every write). Waits (advisory locks) for adds already in flight to commit, so after
    this returns every add for them either committed before or is refused. Side effect: WriteBlock rows holding
    only keyed hashes."""
    narrowing = pseudonymise_scope(
        {k: v for k, v in (scope or {}).items() if k in (*ENTITY_FIELDS, "metadata")}
    )
    _lock_subjects(user_ids, shared=False)
    # one INSERT; a block already placed (same user, kind and reference: writeblock_unique) stays as it is
    WriteBlock.objects.bulk_create(
        [
            WriteBlock(
                user_id_hmac=pseudonym(u), kind=kind, reference=reference, scope_pseudonymised=narrowing
            )
            for u in sorted(set(user_ids))
        ],
        ignore_conflicts=True,
    )


def write_block_lift(*, reference: str, kind: str) -> int:
    deleted, _ = WriteBlock.objects.filter(reference=reference, kind=kind).delete()
    return deleted


def write_blocks_for(*, user_ids: list[str]) -> set[str]:
    return set(
        WriteBlock.objects.filter(user_id_hmac__in=[pseudonym(u) for u in user_ids]).values_list(
            "kind", flat=True
        )
    )


class MemoryNotFound(Exception):
    """An update names a memory id that does not exist (the id is not personal data)."""

    def __init__(self, memory_id: uuid.UUID):
        self.memory_id = memory_id
        super().__init__(str(memory_id))


@transaction.atomic
def memories_update_batch(*, updates: list[dict[str, Any]]) -> int:
    """Applies [{"memory_id": UUID, "text"?: str, "metadata"?: …}, …] all or nothing, rows locked in id order
    (no deadlock between two batches). Raises MemoryNotFound, MemoryImmutable, MemoryWriteBlocked; any of them
    rolls the whole batch back. Side effects: as memory_update per item."""
    by_id = {item["memory_id"]: item for item in updates}
    memories = {m.id: m for m in Memory.objects.select_for_update().filter(id__in=by_id).order_by("id")}
    for memory_id in sorted(by_id):
        memory = memories.get(memory_id)
        if memory is None:
            raise MemoryNotFound(memory_id)
        item = by_id[memory_id]
        memory_update(
            memory=memory,
            text=item.get("text"),
            metadata=item["metadata"] if "metadata" in item else _UNSET,
        )
    return len(by_id)


def memories_delete_by_ids(
    *, memory_ids: list[uuid.UUID], kind: str, requested_by: str
) -> dict[uuid.UUID, str]:
    """Deletes these memories through the one deletion engine (memories_delete_now) and reports each id as
    "deleted", "held" (legal hold) or "not_found". Runs no engine job when nothing deletable exists.
    Side effects: those of the engine (memories and their history text removed, DELETE events, a DeletionJob)."""
    from .engine import memories_delete_now

    wanted = list(dict.fromkeys(memory_ids))
    scope = {"memory_ids": [str(i) for i in wanted]}
    present = set(Memory.objects.filter(id__in=wanted).values_list("id", flat=True))
    held = set(Memory.objects.filter(id__in=wanted).filter(held_q(scope)).values_list("id", flat=True))
    deleted: set[uuid.UUID] = set()
    if present - held:
        result = memories_delete_now(
            kind=kind, scope={"memory_ids": [str(i) for i in present]}, requested_by=requested_by
        )
        deleted = set(result.deleted_ids)
    outcome: dict[uuid.UUID, str] = {}
    still_held = set(
        Memory.objects.filter(id__in=[i for i in present if i not in deleted])
        .filter(held_q(scope))
        .values_list("id", flat=True)
    )
    for memory_id in wanted:
        if memory_id in deleted:
            outcome[memory_id] = "deleted"
        elif memory_id in still_held:
            outcome[memory_id] = "held"
        else:
            outcome[memory_id] = "not_found"
    return outcome
