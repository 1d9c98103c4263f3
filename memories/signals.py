"""Signals by which the memory store tells other apps about its work without importing them."""

from django.dispatch import Signal

# Sent with job=<DeletionJob> inside the transaction that finishes the job (SUCCEEDED or FAILED).
deletion_job_finished = Signal()
