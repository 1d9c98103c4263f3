"""Lifting a suppression: after an erasure with `suppress`, the subject's user ids are refused new memories in the
erased scope (a WriteBlock of kind suppression); staff can lift it, e.g. when the subject comes back."""

from django.db import transaction

from memories.models import WriteBlock
from memories.services import write_block_lift

from ..audit import audit_append
from ..models import ErasureRequest


class NoActiveSuppression(Exception):
    """The request holds no active suppression (never asked, or already lifted): HTTP 409."""

    message = "this request holds no active suppression (none was placed, or it was lifted)"


def suppression_active(*, request: ErasureRequest) -> bool:
    return WriteBlock.objects.filter(reference=request.reference, kind=WriteBlock.Kind.SUPPRESSION).exists()


@transaction.atomic
def erasure_request_suppression_lift(*, request: ErasureRequest, actor: str, note: str = "") -> int:
    """Lifts the suppression the request placed: its user ids may be written again. Raises NoActiveSuppression
    when the request holds no active suppression. Side effects: the request's suppression
    WriteBlock rows deleted, one `request.suppression_lifted` audit entry (count of blocks, whether a note was
    given; never the note). Returns how many blocks were lifted."""
    lifted = write_block_lift(reference=request.reference, kind=WriteBlock.Kind.SUPPRESSION)
    if not lifted:
        raise NoActiveSuppression()
    audit_append(
        actor=actor,
        action="request.suppression_lifted",
        request=request,
        data={"state": request.state, "blocks_lifted": lifted, "note_given": bool(note)},
    )
    return lifted
