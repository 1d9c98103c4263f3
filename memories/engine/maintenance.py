"""Beat work around the engine: indexing the tombstones batches wrote, and the expiry sweep."""

from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from ..models import DeletionJob, Memory, MemoryTombstone
from .dispatch import deletion_job_create


def memories_tombstones_merge(*, limit: int = 200) -> int:
    """Adds the tombstones that batches wrote unindexed to the GIN index on their ids (indexed = true: the partial
    index takes them), `limit` rows per transaction, then moves the index's pending list into the index proper
    (gin_clean_pending_list), so that the engine's batches never pay for the index. Returns how many tombstones it
    indexed."""
    indexed = 0
    while True:
        with transaction.atomic():
            pending = MemoryTombstone.objects.filter(indexed=False).order_by("id").values("id")[:limit]
            count = MemoryTombstone.objects.filter(id__in=pending).update(indexed=True)
        indexed += count
        if count < limit:
            break
    with connection.cursor() as cur:
        cur.execute("SELECT gin_clean_pending_list('tombstone_ids_gin'::regclass)")
    return indexed


def memories_purge_expired(*, today: Any = None) -> DeletionJob | None:
    """Starts one expiry job for memories whose expiration_date has passed, unless one is already open."""
    today = today or timezone.localdate()
    if DeletionJob.objects.filter(
        kind=DeletionJob.Kind.EXPIRY, status__in=[DeletionJob.Status.PENDING, DeletionJob.Status.RUNNING]
    ).exists():
        return None
    if not Memory.objects.filter(expiration_date__lt=today).exists():
        return None
    with transaction.atomic():
        return deletion_job_create(
            kind=DeletionJob.Kind.EXPIRY, scope={"expired_before": today.isoformat()}, requested_by="beat"
        )
