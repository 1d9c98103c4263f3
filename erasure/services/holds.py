"""Legal holds (GDPR Art. 17(3)) placed and lifted by the privacy team: an erasure skips and counts held
memories."""

import uuid
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from memories import engine
from memories.holds import legal_hold_lift, legal_hold_place, legal_hold_released_memories
from memories.models import DeletionJob, LegalHold
from memories.pseudonyms import pseudonym
from memories.scope import ScopeError, validate_scope

from ..audit import audit_append
from ..models import ErasureRequest, HoldRelease, State
from .errors import ErasureInputError
from .validation import refuse_nul


@transaction.atomic
def legal_hold_create(*, scope: dict[str, Any], reason: str, note: str = "", actor: str) -> LegalHold:
    """Places a hold on every memory in `scope` not already held; an erasure then skips and counts them.
    Side effects: a LegalHold row (scope kept pseudonymised only), memories' legal_hold set, one audit entry."""
    if reason not in LegalHold.Reason.values:
        raise ErasureInputError("reason", f"must be one of {', '.join(LegalHold.Reason.values)}")
    refuse_nul("note", note)
    try:
        scope = validate_scope(scope)
    except ScopeError as exc:
        raise ErasureInputError("scope", str(exc)) from None
    hold = legal_hold_place(scope=scope, reason=reason, note=note, placed_by=actor[:150])
    audit_append(
        actor=actor,
        action="legal_hold.placed",
        data={
            "hold": str(hold.id),
            "reason": reason,
            "memories_held": hold.memories_held,
            "scope": hold.scope_pseudonymised,
        },
    )
    return hold


@transaction.atomic
def legal_hold_release(*, hold: LegalHold, actor: str) -> tuple[LegalHold, int]:
    """Lifts a hold (its memories become erasable again, except those another active hold covers); returns it with
    the number released. Lifting a lifted hold changes nothing and writes no audit entry. Side effects: memories'
    legal_hold cleared or moved to the other hold, one audit entry; for each erasure that kept released memories
    because of a hold, a HoldRelease (the console's offer to erase them under that request) and an audit entry on
    the request."""
    if hold.lifted_at is not None:
        return hold, 0
    kept = _kept_by_erasures(hold)
    hold, released = legal_hold_lift(hold=hold, lifted_by=actor[:150])
    audit_append(
        actor=actor,
        action="legal_hold.lifted",
        data={"hold": str(hold.id), "reason": hold.reason, "memories_released": released},
    )
    for request, memory_ids in kept:
        HoldRelease.objects.create(hold=hold, request=request, memory_ids=memory_ids)
        audit_append(
            actor=actor,
            action="request.hold_lifted",
            request=request,
            data={"hold": str(hold.id), "memories_released": len(memory_ids)},
        )
    return hold, released


def _kept_by_erasures(hold: LegalHold) -> list[tuple[ErasureRequest, list[uuid.UUID]]]:
    """Before a lift: the memories it releases that an erasure kept because of a hold, by request. A request
    counts when it ended its deletion with memories held, names the memories' user id (by pseudonym) and, when
    narrowed to agents/apps/runs, matches them too (a metadata narrowing is not offered); the memory must have
    existed when its deletion ended."""
    released = legal_hold_released_memories(hold)
    users = {pseudonym(u): u for u in released.order_by().values_list("user_id", flat=True).distinct() if u}
    if not users:
        return []
    match = Q()
    for hashed in users:
        match |= Q(subject_pseudonyms__user_ids__contains=[hashed])
    requests = ErasureRequest.objects.filter(
        match, state__in=[State.DELETED, State.VERIFIED], held_count__gt=0, deleted_at__isnull=False
    ).order_by("received_at")
    out = []
    for request in requests:
        narrowing = request.scope_pseudonymised or {}
        if set(narrowing) - {"agent_id", "app_id", "run_id"}:
            continue
        mine = [users[h] for h in request.subject_pseudonyms.get("user_ids", []) if h in users]
        rows = released.filter(user_id__in=mine, created_at__lte=request.deleted_at).values_list(
            "id", "agent_id", "app_id", "run_id"
        )
        ids = [
            memory_id
            for memory_id, *entities in rows
            if all(
                value is not None and pseudonym(value) in narrowing[key]
                for key, value in zip(("agent_id", "app_id", "run_id"), entities, strict=True)
                if key in narrowing
            )
        ]
        if ids:
            out.append((request, sorted(ids)))
    return out


@transaction.atomic
def hold_release_erase(*, release: HoldRelease, actor: str) -> HoldRelease:
    """Erases, under its original request, the memories an erasure kept because of a hold since lifted (those a
    hold still keeps stay: the engine skips them). Side effects: a DeletionJob (kind erasure, the memories' ids;
    sent to the workers on commit), the release decided, one audit entry on the request."""
    release = HoldRelease.objects.select_for_update().select_related("request").get(pk=release.pk)
    if release.decided_at is not None:
        return release
    job = engine.deletion_job_create(
        kind=DeletionJob.Kind.ERASURE,
        scope={"memory_ids": [str(i) for i in release.memory_ids]},
        requested_by=release.request.reference,
    )
    release.deletion_job = job
    release.decided_by, release.decided_at = actor[:150], timezone.now()
    release.save(update_fields=["deletion_job", "decided_by", "decided_at"])
    audit_append(
        actor=actor,
        action="request.released_memories_erased",
        request=release.request,
        data={"hold": str(release.hold_id), "job": str(job.id), "memories": len(release.memory_ids)},
    )
    return release


@transaction.atomic
def hold_release_keep(*, release: HoldRelease, actor: str) -> HoldRelease:
    """Staff chose not to erase the released memories under the request. Side effects: the release decided, one
    audit entry on the request."""
    release = HoldRelease.objects.select_for_update().select_related("request").get(pk=release.pk)
    if release.decided_at is None:
        release.decided_by, release.decided_at = actor[:150], timezone.now()
        release.save(update_fields=["decided_by", "decided_at"])
        audit_append(
            actor=actor,
            action="request.released_memories_kept",
            request=release.request,
            data={"hold": str(release.hold_id), "memories": len(release.memory_ids)},
        )
    return release
