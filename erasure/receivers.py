"""Subscriptions of the erasure app to the memory store's signals."""

from typing import Any

from django.dispatch import receiver

from memories.models import DeletionJob
from memories.signals import deletion_job_finished


@receiver(deletion_job_finished, dispatch_uid="erasure.deletion_job_finished")
def on_deletion_job_finished(sender: Any, job: DeletionJob, **kwargs: Any) -> None:
    """Runs inside the job's final transaction, so the request's move commits (or rolls back) with the job's."""
    if job.kind != DeletionJob.Kind.ERASURE or job.parent_id is not None:
        return  # a lane's end is part of its job's run, which ends the job (and moves the request) itself
    from .services import erasure_request_job_finished

    erasure_request_job_finished(job=job)
