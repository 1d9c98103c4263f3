"""The public form's intake: a duplicate submission (same e-mail and user ids within DUPLICATE_WINDOW) is folded
into the first request instead of creating a second one. Serialised per e-mail by a transaction-scoped advisory
lock, so two simultaneous submissions cannot both create."""

from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from memories.pseudonyms import pseudonym

from .models import Channel, ErasureRequest, State

DUPLICATE_WINDOW = timedelta(minutes=10)


@transaction.atomic
def subject_request_submit(
    *, regulation: str, user_ids: list[str], email: str, suppress: bool = False
) -> tuple[ErasureRequest, bool]:
    """(request, created). Side effects: those of erasure_request_create, unless folded into an existing one."""
    from . import services

    email_key = pseudonym(email.strip().lower())
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"subject-form:{email_key}"])
    ids_key = sorted(pseudonym(u) for u in {u.strip() for u in user_ids if u.strip()})
    earlier = (
        ErasureRequest.objects.filter(
            channel=Channel.FORM,
            state=State.RECEIVED,
            regulation=regulation,
            received_at__gte=timezone.now() - DUPLICATE_WINDOW,
            subject_pseudonyms__email=email_key,
        )
        .order_by("received_at")
        .first()
    )
    if earlier is not None and sorted(earlier.subject_pseudonyms.get("user_ids") or []) == ids_key:
        return earlier, False
    request, _token = services.erasure_request_create(
        regulation=regulation, user_ids=user_ids, email=email, suppress=suppress, channel="form", actor="form"
    )
    return request, True
