"""Thin Celery wrappers of the DRP status callbacks: ids only. The back-off (30 s doubling to an hour, 40
retries) keeps trying for more than a day; the beat sweeper re-enqueues anything whose message was lost."""

from celery import shared_task
from django.conf import settings

from . import services

CALLBACK_MAX_RETRIES = 40


@shared_task(bind=True, acks_late=True, max_retries=CALLBACK_MAX_RETRIES)
def drp_callback_send_task(self, callback_id: int) -> None:
    if not services.drp_callback_send(callback_id=callback_id) and self.request.retries < self.max_retries:
        base = settings.DRP_CALLBACK_RETRY_BASE_SECONDS
        raise self.retry(countdown=min(base * 2**self.request.retries, 3600.0))


@shared_task(acks_late=True)
def drp_callbacks_resume_task() -> None:
    services.drp_callbacks_resume()


@shared_task(acks_late=True)
def drp_verifications_expire_task() -> None:
    services.drp_verifications_expire()
