"""Legal holds (GDPR Art. 17(3)) placed and lifted by the privacy team: an erasure skips and counts held
memories."""

from typing import Any

from django.db import transaction

from memories.holds import legal_hold_lift, legal_hold_place
from memories.models import LegalHold
from memories.scope import ScopeError, validate_scope

from ..audit import audit_append
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
    """Lifts a hold (its memories become erasable again); returns it with the number released. Lifting a lifted
    hold changes nothing and writes no audit entry. Side effects: memories' legal_hold cleared, one audit entry."""
    if hold.lifted_at is not None:
        return hold, 0
    hold, released = legal_hold_lift(hold=hold, lifted_by=actor[:150])
    audit_append(
        actor=actor,
        action="legal_hold.lifted",
        data={"hold": str(hold.id), "reason": hold.reason, "memories_released": released},
    )
    return hold, released
