"""Subscriptions of the erasure app to the memory store's signals, and the whole path from the end of a request's
deletion job to `verified`:

1. memories.engine ends the job (SUCCEEDED, or FAILED once its retries ran out) and, inside that final
   transaction, sends memories.signals.deletion_job_finished(job=...). `memories` never imports `erasure`.
2. deletion_job_finished_receiver (below) hands a request's own deletion job to
   erasure.services.erasure_request_job_finished in that same transaction, so the request's move commits (or rolls
   back) with the job's: SUCCEEDED → `deleted` with the job's counts; FAILED → `failed`.
3. On `deleted` it calls erasure.services.verification_start: when the transaction commits, erasure_request_verify
   runs at once in the worker task that ran the job, or else (and whenever that cannot finish) the task
   erasure.tasks.erasure_request_verify_task with its retries. Verified → `verified`, certificate available.
4. Should the message be lost (a worker killed, Redis restarted empty), the beat sweeper
   erasure.services.erasure_requests_resume_stale starts the verification again for requests left in `deleted`.
"""

from typing import Any

from django.dispatch import receiver

from memories.models import DeletionJob
from memories.signals import deletion_job_finished

from .services import erasure_request_job_finished


@receiver(deletion_job_finished, dispatch_uid="erasure.deletion_job_finished")
def deletion_job_finished_receiver(sender: Any, job: DeletionJob, **kwargs: Any) -> None:
    """Step 2 of the path above."""
    if job.kind != DeletionJob.Kind.ERASURE or job.parent_id is not None:
        return  # a lane's end is part of its job's run, which ends the job (and moves the request) itself
    if erasure_request_job_finished(job=job) is None:
        # not a request's own job: perhaps released memories erased under a verified request
        from .certificate_supplement import hold_release_job_finished

        hold_release_job_finished(job=job)
