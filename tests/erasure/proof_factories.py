"""Synthetic erasure requests for the proof tests (built directly, without the lifecycle services)."""

import uuid
from datetime import timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from erasure.models import ErasureRequest
from memories.engine import ids_digest
from memories.pseudonyms import pseudonym

CANARY_USER = "canary-user-5e1f9a"
CANARY_EMAIL = "canary.5e1f9a@example.org"


def next_reference(year: int = 2026) -> str:
    with connection.cursor() as cur:
        cur.execute("SELECT nextval('erasure_reference_seq')")
        (n,) = cur.fetchone()
    return f"ER-{year}-{n:06d}"


def make_request(*, state: str = "verified", received_at: Any = None, **fields: Any) -> ErasureRequest:
    """A request as the lifecycle leaves it in `state`; verified ones are pseudonymised (clear ids emptied)."""
    received = received_at or timezone.now() - timedelta(days=3)
    deleted_ids = sorted(uuid.uuid4() for _ in range(5))
    values: dict[str, Any] = {
        "reference": next_reference(received.year),
        "regulation": "gdpr",
        "state": state,
        "channel": "api",
        "created_by": "apikey:staff-test",
        "subject_user_ids": [] if state == "verified" else [CANARY_USER],
        "subject_email": "" if state == "verified" else CANARY_EMAIL,
        "subject_pseudonyms": {"user_ids": [pseudonym(CANARY_USER)], "email": pseudonym(CANARY_EMAIL)},
        "scope_pseudonymised": {"agent_id": [pseudonym("support-bot")]},
        "identity_status": "verified",
        "received_at": received,
        "identity_verified_at": received + timedelta(hours=1),
        "due_at": (received + timedelta(days=30)).date(),
    }
    if state in ("scoped", "deleted", "verified"):
        values.update(scoped_at=received + timedelta(hours=2), scoped_total=6, scoped_held=1)
    if state in ("deleted", "verified"):
        values.update(
            approved_at=received + timedelta(hours=3),
            deleted_at=received + timedelta(hours=4),
            deleted_count=5,
            held_count=1,
            history_purged_count=9,
            deleted_ids_digest=ids_digest(deleted_ids),
        )
    if state == "verified":
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
    return ErasureRequest.objects.create(**values)
