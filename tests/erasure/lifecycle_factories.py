"""Synthetic erasure requests and memories for the lifecycle tests (no real personal data)."""

from typing import Any

from django.utils import timezone

from erasure.models import ErasureRequest, IdentityStatus, State
from erasure.services import erasure_request_create
from memories.pseudonyms import pseudonym


def make_request(
    *,
    state: str = State.RECEIVED,
    user_ids: list[str] | None = None,
    email: str = "subject@example.test",
    regulation: str = "gdpr",
    scope: dict[str, Any] | None = None,
    suppress: bool = False,
    **fields: Any,
) -> ErasureRequest:
    """A request created through the service, then put straight into `state` (test set-up only)."""
    request, _token = erasure_request_create(
        regulation=regulation,
        user_ids=user_ids or ["subject-1"],
        email=email,
        scope=scope,
        suppress=suppress,
        channel="api",
        actor="test",
    )
    now = timezone.now()
    updates: dict[str, Any] = {"state": state}
    if state != State.RECEIVED:
        updates["identity_status"] = IdentityStatus.VERIFIED
        updates["identity_verified_at"] = now
    if state in (State.SCOPED, State.DELETED, State.VERIFIED, State.FAILED):
        updates["scoped_at"] = now
        updates["scoped_total"] = 0
    if state in (State.DELETED, State.VERIFIED, State.FAILED):
        updates["approved_at"] = now
    updates.update(fields)
    if updates.get("identity_status") == IdentityStatus.VERIFIED:  # verified as staff do: every id confirmed
        updates.setdefault(
            "subject_confirmed_pseudonyms", sorted(pseudonym(u) for u in request.subject_user_ids)
        )
    ErasureRequest.objects.filter(id=request.id).update(**updates)
    request.refresh_from_db()
    return request
