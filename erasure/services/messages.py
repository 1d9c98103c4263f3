"""The subject's secret status link. The mails themselves are erasure/notices.py's (an outbox sent after commit
by a task with retries)."""

from django.conf import settings

from ..models import ErasureRequest


def status_link(request: ErasureRequest, raw_token: str) -> str:
    return f"{settings.SITE_URL}/privacy/status/{request.reference}/?token={raw_token}"
