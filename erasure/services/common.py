"""What the request services share: the compare-and-set move of the lifecycle table and the engine's scope of
a request."""

from collections.abc import Mapping
from typing import Any

from django.utils import timezone

from ..models import TRANSITIONS, ErasureRequest
from .errors import IllegalTransition

NONE_KEY = ""  # the key under which memories without an agent_id / run_id are counted


def engine_scope(request: ErasureRequest) -> dict[str, Any]:
    """The engine's scope for this request: all its user_ids, narrowed by the optional scope keys."""
    return {"user_id": sorted(request.subject_user_ids), **(request.scope or {})}


def compare_and_set(
    request: ErasureRequest, action: str, *, seen: Mapping[str, Any] | None = None, **updates: Any
) -> ErasureRequest:
    """Makes the move `action` of the table (erasure.models.TRANSITIONS) in one UPDATE whose WHERE clause is the
    move's: the state this caller saw, and the move's guard. `seen` adds other fields as this caller read them
    (so a move decided on them cannot win against a concurrent change). When no row matches (someone moved it
    first, or the table does not allow the move) raises IllegalTransition with the state as it is now."""
    move = TRANSITIONS[action]
    if request.state not in move.sources or (move.check is not None and not move.check(request)):
        raise IllegalTransition(request, action)
    if move.target is not None:
        updates["state"] = move.target
    updates["updated_at"] = timezone.now()
    qs = ErasureRequest.objects.filter(
        ErasureRequest.move_filter(action, state=request.state), id=request.id, **(seen or {})
    )
    if qs.update(**updates) != 1:
        raise IllegalTransition(request, action)
    request.refresh_from_db()
    return request
