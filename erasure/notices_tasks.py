"""Thin Celery wrappers of erasure/notices.py: they take row ids, never an address."""

from celery import shared_task

from . import notices

NOTICE_MAX_RETRIES = notices.NOTICE_MAX_ATTEMPTS - 1


def _backoff(retries: int) -> int:
    return int(min(30 * 2**retries, 3600))


@shared_task(bind=True, acks_late=True, max_retries=NOTICE_MAX_RETRIES)
def notice_send_task(self, notice_id: int) -> None:
    if not notices.notice_send(notice_id=notice_id) and self.request.retries < self.max_retries:
        raise self.retry(countdown=_backoff(self.request.retries))


@shared_task(bind=True, acks_late=True, max_retries=NOTICE_MAX_RETRIES)
def alert_send_task(self, alert_id: int) -> None:
    if not notices.alert_send(alert_id=alert_id) and self.request.retries < self.max_retries:
        raise self.retry(countdown=_backoff(self.request.retries))


@shared_task(acks_late=True)
def staff_alerts_sweep_task() -> None:
    notices.staff_alerts_sweep()


@shared_task(acks_late=True)
def staff_alerts_digest_task() -> None:
    notices.staff_alerts_digest()


@shared_task(acks_late=True)
def notices_resume_task() -> None:
    notices.notices_resume()
