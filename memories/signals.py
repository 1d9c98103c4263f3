"""Signals by which the memory store tells other apps about its work without importing them (DESIGN.md: `memories`
never imports `erasure`)."""

from django.dispatch import Signal

# Sent with job=<DeletionJob> inside the transaction that finishes the job (SUCCEEDED or FAILED), by the engine
# only. Receivers run in that transaction, so what they write commits or rolls back with the job's end. The erasure
# app's receiver (erasure/receivers.py) tells the whole path from there to a request's `verified`.
deletion_job_finished = Signal()
