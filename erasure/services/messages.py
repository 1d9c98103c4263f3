"""The e-mails to the data subject: the receipt with the secret status link, and the completion notice.
A failed delivery is logged without the address and never fails the request."""

import logging

from django.conf import settings
from django.core.mail import send_mail

from ..attribution import erasure_attribution_sentence
from ..models import ErasureRequest

logger = logging.getLogger(__name__)


def status_link(request: ErasureRequest, raw_token: str) -> str:
    return f"{settings.SITE_URL}/privacy/status/{request.reference}/?token={raw_token}"


def _mail(*, subject: str, body: str, to: str) -> bool:
    """Plain-text mail to the subject. A failure is logged (without the address) and reported as False."""
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [to], fail_silently=False)
    except Exception as exc:  # noqa: BLE001 - any transport error; the request itself must not fail
        logger.warning("subject mail failed", extra={"error": type(exc).__name__})
        return False
    return True


def receipt_mail_send(*, request: ErasureRequest, raw_token: str, to: str) -> bool:
    """The receipt of a new request, with its deadline and the secret status link. True if it was sent."""
    return _mail(
        subject=f"We received your erasure request {request.reference}",
        body=(
            f"We received your request to erase your personal data (reference {request.reference}).\n"
            f"We will answer by {request.due_at.isoformat()} at the latest.\n\n"
            f"Follow its progress here (keep this link private):\n{status_link(request, raw_token)}\n"
        ),
        to=to,
    )


def completion_mail_send(*, request: ErasureRequest) -> bool:
    """The notice that the erasure is complete, with the counts erased and kept under a legal hold."""
    return _mail(
        subject=f"Your erasure request {request.reference} is complete",
        body=(
            f"Your personal data covered by request {request.reference} has been erased "
            f"({request.deleted_count or 0} items).\n"
            + erasure_attribution_sentence(verification=request.verification)
            + (
                f"{request.held_count} items are kept under a legal hold (GDPR Art. 17(3)).\n"
                if request.held_count
                else ""
            )
        ),
        to=request.subject_email,
    )
