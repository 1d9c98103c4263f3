"""Legal holds (GDPR Art. 17(3)) as rules: while a hold is active it keeps every memory matching its scope, whenever
the memory was written, in every store; lifting one never releases what another active hold still covers.

The rule is evaluated where memories are erased: the engine's batch statement treats as held a row that carries a
hold (legal_hold_id) or matches the scope of an active hold relevant to the job (held_q), and counts them the same
way (held_count); connected stores get the active holds' scopes (active_hold_scopes). legal_hold_id is the rule
applied ahead of time: set on the memories a hold covers when it is placed, and on each memory written or changed
into an active hold's scope (holds_mark), under one advisory lock, so that a hold placed while a job runs stops that
job's batches at once (its row update conflicts with them) and a memory written meanwhile carries the hold too.

A hold keeps its scope in clear while active (the hold itself is the legal basis for keeping it); lifting it drops
the clear scope and keeps only its pseudonymised form. Holds placed before the rule existed (no clear scope) keep
only the memories they marked."""

from typing import Any

from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from .models import ENTITY_FIELDS, LegalHold, Memory
from .pseudonyms import pseudonymise_scope
from .scope import scope_q, validate_scope

_HOLDS_LOCK = 0x686F6C6473  # "holds": writes of memories take it shared, placing and lifting a hold exclusive


def _lock_holds(*, shared: bool) -> None:
    fn = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    with connection.cursor() as cur:
        cur.execute(f"SELECT {fn}(%s)", [_HOLDS_LOCK])


def _active() -> list[LegalHold]:
    return list(
        LegalHold.objects.filter(lifted_at__isnull=True, scope__isnull=False).order_by("placed_at", "id")
    )


def active_hold_scopes() -> list[dict[str, Any]]:
    """The validated deletion scopes, in clear, of the active holds: what every store must keep while they are
    active (memories.scope's shape)."""
    return [validate_scope(hold.scope) for hold in _active()]


def _disjoint(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether no memory can match both scopes, judged on the keys both name with a set of values."""
    for key in (*ENTITY_FIELDS, "memory_ids"):
        if key in a and key in b:
            left = set(a[key]) if isinstance(a[key], list) else {a[key]}
            right = set(b[key]) if isinstance(b[key], list) else {b[key]}
            if not left & right:
                return True
    return False


def hold_scopes_for(
    scope: dict[str, Any] | None, *, active: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The scopes of the active holds that can cover memories of this scope (all of them without one). Holds are
    few; a hold on other subjects does not touch a job's statement. `active`: active_hold_scopes() already read
    in this transaction."""
    active = active_hold_scopes() if active is None else active
    return [s for s in active if scope is None or not _disjoint(s, scope)]


def held_q(scope: dict[str, Any] | None = None, *, hold_scopes: list[dict[str, Any]] | None = None) -> Q:
    """Memories kept by a hold: carrying one, or matching an active hold's scope (those relevant to `scope`)."""
    q = Q(legal_hold__isnull=False)
    for hold_scope in hold_scopes if hold_scopes is not None else hold_scopes_for(scope):
        q |= scope_q(hold_scope)
    return q


def held_count(scope: dict[str, Any]) -> int:
    """How many memories of the scope are kept by a hold right now."""
    return Memory.objects.filter(scope_q(scope)).filter(held_q(scope)).count()


def hold_matching_count(hold: LegalHold) -> int:
    """How many memories this hold keeps now: those it marked and, while active, every one matching its scope."""
    q = Q(legal_hold=hold)
    if hold.is_active and hold.scope:
        q |= scope_q(hold.scope)
    return Memory.objects.filter(q).count()


def holds_mark(*, memory_ids: list[Any]) -> int:
    """Inside the transaction that wrote these memories: each one not yet held that matches an active hold's scope
    carries that hold (the oldest). Waits for a hold being placed or lifted to commit, so that a memory written
    meanwhile is covered either way. Returns how many were marked."""
    assert connection.in_atomic_block, "the holds' lock is held until the transaction ends"
    if not memory_ids:
        return 0
    _lock_holds(shared=True)
    marked = 0
    for hold in _active():
        assert hold.scope is not None
        marked += (
            Memory.objects.filter(id__in=memory_ids, legal_hold__isnull=True)
            .filter(scope_q(hold.scope))
            .update(legal_hold=hold)
        )
    return marked


@transaction.atomic
def legal_hold_place(*, scope: dict[str, Any], reason: str, note: str, placed_by: str) -> LegalHold:
    """Places a hold: a rule keeping every memory of `scope` while it is active. Side effects: a LegalHold row (its
    scope in clear and pseudonymised); the memories of the scope not yet held carry it (one UPDATE), which stops a
    running job's batch that selected one of them."""
    scope = validate_scope(scope)
    _lock_holds(shared=False)
    hold = LegalHold.objects.create(
        reason=reason,
        note=note,
        scope=scope,
        scope_pseudonymised=pseudonymise_scope(scope),
        placed_by=placed_by,
    )
    Memory.objects.filter(scope_q(scope), legal_hold__isnull=True).update(legal_hold=hold)
    hold.memories_held = hold_matching_count(hold)
    hold.save(update_fields=["memories_held"])
    return hold


def legal_hold_releases(hold: LegalHold) -> int:
    """How many memories lifting this (active) hold would release: those it keeps that no other hold covers."""
    return legal_hold_released_memories(hold).count()


def legal_hold_released_memories(hold: LegalHold) -> QuerySet[Memory]:
    """The memories lifting this hold would release: those it keeps that no other active hold covers (none once
    it is lifted)."""
    if not hold.is_active:
        return Memory.objects.none()
    kept = Q(legal_hold=hold)
    if hold.scope:
        kept |= scope_q(hold.scope)
    still = Q(legal_hold__isnull=False) & ~Q(legal_hold=hold)
    for other in _active():
        if other.pk != hold.pk:
            assert other.scope is not None
            still |= scope_q(other.scope)
    return Memory.objects.filter(kept).exclude(still)


@transaction.atomic
def legal_hold_lift(*, hold: LegalHold, lifted_by: str) -> tuple[LegalHold, int]:
    """Lifts a hold; returns it with how many memories it releases: those it kept that no other active hold covers.
    Side effects: the hold's lifted_at/by set and its clear scope dropped; its memories covered by another active
    hold carry that one; the others carry none."""
    _lock_holds(shared=False)
    hold = LegalHold.objects.select_for_update().get(pk=hold.pk)
    if not hold.is_active:
        return hold, 0
    released = legal_hold_releases(hold)
    hold.lifted_at = timezone.now()
    hold.lifted_by = lifted_by
    hold.scope = None
    hold.save(update_fields=["lifted_at", "lifted_by", "scope"])
    others = _active()
    for other in others:
        assert other.scope is not None
        Memory.objects.filter(legal_hold=hold).filter(scope_q(other.scope)).update(legal_hold=other)
    Memory.objects.filter(legal_hold=hold).update(legal_hold=None)
    return hold, released
