"""Subscription of the erasure app to the connected stores' job signal (memories/stores/signals.py)."""

from typing import Any

from django.dispatch import receiver

from memories.models import StoreJob
from memories.stores.signals import store_job_finished


@receiver(store_job_finished, dispatch_uid="erasure.store_job_finished")
def on_store_job_finished(sender: Any, job: StoreJob, **kwargs: Any) -> None:
    """Runs inside the store job's final transaction, so the request's move commits (or rolls back) with it."""
    from .services.stores import erasure_request_store_job_finished

    erasure_request_store_job_finished(job=job)
