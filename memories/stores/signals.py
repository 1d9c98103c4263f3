"""Signals by which connected stores' jobs tell other apps about their work without importing them."""

from django.dispatch import Signal

# Sent with job=<StoreJob> inside the transaction that finishes the job (SUCCEEDED or FAILED).
store_job_finished = Signal()
