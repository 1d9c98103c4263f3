"""Factories of synthetic erasure requests (model_bakery): a request as the lifecycle leaves it in a given state,
built directly, without the services that lead there. Synthetic data only.

- request_in_state: the subject in clear, every step passed stamped "now" (the lifecycle and page tests);
- canary_request: the canary subject, fixed counts and a digest, steps an hour apart, verified ones pseudonymised
  (the proof tests look for the canary in everything they produce).
"""

import uuid
from datetime import timedelta
from typing import Any

from django.db import connection
from django.utils import timezone
from model_bakery.recipe import Recipe

from erasure.deadlines import acknowledge_due_date, due_date
from erasure.models import Channel, ErasureRequest, IdentityStatus, Regulation, State
from memories.engine import ids_digest
from memories.pseudonyms import pseudonym, pseudonymise_scope

CANARY_USER = "canary-user-5e1f9a"
CANARY_EMAIL = "canary.5e1f9a@example.org"


def next_reference(year: int | None = None) -> str:
    """The next reference from the same sequence the service uses."""
    with connection.cursor() as cur:
        cur.execute("SELECT nextval('erasure_reference_seq')")
        (number,) = cur.fetchone()
    return f"ER-{year or timezone.now().year}-{number:06d}"


erasure_request = Recipe(
    ErasureRequest,
    reference=next_reference,
    regulation=Regulation.GDPR,
    channel=Channel.API,
    created_by="apikey:staff-test",
    received_at=timezone.now,
    due_at=lambda: due_date(Regulation.GDPR, timezone.localdate()),
)


def _subject(user_ids: list[str], email: str) -> dict[str, Any]:
    return {
        "subject_user_ids": sorted(user_ids),
        "subject_email": email,
        "subject_pseudonyms": {
            "user_ids": sorted(pseudonym(u) for u in user_ids),
            "email": pseudonym(email.lower()) if email else None,
        },
    }


def request_in_state(
    *,
    state: str = State.RECEIVED,
    user_ids: list[str] | None = None,
    email: str = "subject@example.test",
    regulation: str = Regulation.GDPR,
    scope: dict[str, Any] | None = None,
    suppress: bool = False,
    **fields: Any,
) -> ErasureRequest:
    """A request in `state` with the subject in clear: identity confirmed past `received`, scoped (0 memories)
    from `scoped` on, approved from `deleted` on and in `failed`. `fields` override any column."""
    now = timezone.now()
    received = timezone.localdate(now)
    values: dict[str, Any] = {
        **_subject(user_ids or ["subject-1"], email),
        "state": state,
        "regulation": regulation,
        "scope": scope or {},
        "scope_pseudonymised": pseudonymise_scope(scope),
        "suppress": suppress,
        "received_at": now,
        "acknowledged_at": now if email else None,
        "due_at": due_date(regulation, received),
        "acknowledge_due_at": acknowledge_due_date(received) if regulation == Regulation.CCPA else None,
    }
    if state != State.RECEIVED:
        values.update(identity_status=IdentityStatus.VERIFIED, identity_verified_at=now)
    if state in (State.SCOPED, State.DELETED, State.VERIFIED, State.FAILED):
        values.update(scoped_at=now, scoped_total=0)
    if state in (State.DELETED, State.VERIFIED, State.FAILED):
        values.update(approved_at=now)
    values.update(fields)
    if values.get("identity_status") == IdentityStatus.VERIFIED:  # confirmed as staff do: every id confirmed
        values.setdefault(
            "subject_confirmed_pseudonyms", sorted(pseudonym(u) for u in values.get("subject_user_ids") or [])
        )
    return erasure_request.make(**values)


def canary_request(*, state: str = State.VERIFIED, received_at: Any = None, **fields: Any) -> ErasureRequest:
    """A request of the canary subject in `state` (scoped: 6 memories, 1 held; deleted: 5, 9 history rows),
    received three days ago; a verified one is pseudonymised (its clear identifiers emptied)."""
    received = received_at or timezone.now() - timedelta(days=3)
    verified = state == State.VERIFIED
    values: dict[str, Any] = {
        **_subject([CANARY_USER], CANARY_EMAIL),
        "reference": next_reference(received.year),
        "state": state,
        "scope_pseudonymised": {"agent_id": [pseudonym("support-bot")]},
        "identity_status": IdentityStatus.VERIFIED,
        "subject_confirmed_pseudonyms": [pseudonym(CANARY_USER)],
        "received_at": received,
        "identity_verified_at": received + timedelta(hours=1),
        "due_at": (received + timedelta(days=30)).date(),
    }
    if verified:
        values.update(subject_user_ids=[], subject_email="")
    if state in (State.SCOPED, State.DELETED, State.VERIFIED):
        values.update(scoped_at=received + timedelta(hours=2), scoped_total=6, scoped_held=1)
    if state in (State.DELETED, State.VERIFIED):
        values.update(
            approved_at=received + timedelta(hours=3),
            deleted_at=received + timedelta(hours=4),
            deleted_count=5,
            held_count=1,
            history_purged_count=9,
            deleted_ids_digest=ids_digest(sorted(uuid.uuid4() for _ in range(5))),
        )
    if verified:
        values.update(
            verified_at=received + timedelta(hours=5),
            notified_at=received + timedelta(hours=5, minutes=1),
            pseudonymised_at=received + timedelta(hours=5, minutes=1),
            verification={
                "memories_remaining": 0,
                "history_text_remaining": 0,
                "memories_held": 1,
                "checked_tables": ["memories_memory", "memories_history"],
                "checked_at": (received + timedelta(hours=5)).isoformat(),
            },
        )
    values.update(fields)
    return erasure_request.make(**values)
