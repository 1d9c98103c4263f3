"""The jobs that erase a scope in a connected store, resumable at any instant.

A job runs in time budgets (store_job_run, called by memories.stores.tasks.store_job_run_task with the job's id
only). The connector gets a DurableProgress: each checkpoint records, in one transaction, the ids the connector
deleted (one StoreJobId row each, unique per job: an id recorded before is not counted again), its resume state and
the residue it purged, and bumps the heartbeat. A session advisory lock per job keeps two deliveries from running
it at once; a SIGKILLed worker's connection closes, which frees it, and the beat sweeper re-sends jobs whose
heartbeat went stale. When the connector reports the scope erased, the job verifies it (every location 0), takes
its digest (sha256 of the sorted ids) and drops its clear scope, and sends `store_job_finished`.
"""

import hashlib
import logging
import os
import time
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from ..pseudonyms import pseudonymise_scope
from ..scope import validate_scope
from .base import Residue, StoreError
from .models import Store, StoreJob, StoreJobId
from .signals import store_job_finished

logger = logging.getLogger(__name__)

BUDGET_SECONDS = float(os.environ.get("STORE_JOB_BUDGET_SECONDS", "60"))
_IDS_TABLE = StoreJobId._meta.db_table
_JOBS_TABLE = StoreJob._meta.db_table


def ids_digest(ids: Sequence[str]) -> str:
    """sha256 of a store's deleted ids: when every id is a UUID, over their 16 bytes in ascending order (the
    built-in store's digest, memories.engine.ids_digest); otherwise over the ids as UTF-8, sorted, each followed
    by a newline. Anyone holding the list of ids can recompute it."""
    unique = sorted(set(ids))
    try:
        uuids = sorted({uuid.UUID(i) for i in unique})
    except ValueError:
        return hashlib.sha256("".join(f"{i}\n" for i in unique).encode("utf-8")).hexdigest()
    return hashlib.sha256(b"".join(u.bytes for u in uuids)).hexdigest()


class DurableProgress:
    """The EraseProgress of one job run (memories/stores/base.py)."""

    def __init__(self, job: StoreJob, budget_seconds: float):
        self.job_id = job.id
        self.state: dict[str, Any] = dict(job.state or {})
        self._deadline = time.monotonic() + budget_seconds

    def time_left(self) -> float:
        return self._deadline - time.monotonic()

    def checkpoint(
        self, *, deleted_ids: Sequence[str] = (), state: dict[str, Any], residue: Residue | None = None
    ) -> None:
        residue = residue or Residue()
        with transaction.atomic():
            added = 0
            ids = [str(i) for i in deleted_ids]
            with connection.cursor() as cur:
                if ids:
                    cur.execute(
                        f"INSERT INTO {_IDS_TABLE} (job_id, memory_id) SELECT %s, unnest(%s::text[])"
                        " ON CONFLICT (job_id, memory_id) DO NOTHING",
                        [self.job_id, ids],
                    )
                    added = cur.rowcount
            StoreJob.objects.filter(id=self.job_id).update(
                state=state,
                deleted_count=F("deleted_count") + added,
                history_rows_purged=F("history_rows_purged") + residue.history_rows,
                entity_rows_purged=F("entity_rows_purged") + residue.entity_rows,
                messages_purged=F("messages_purged") + residue.messages,
                heartbeat_at=timezone.now(),
            )
        self.state = dict(state)


def store_job_create(
    *, store: Store, scope: dict[str, Any], requested_by: str, scoped_total: int = 0
) -> StoreJob:
    """Creates a PENDING job and sends store_job_run_task(job_id) when the surrounding transaction commits.
    Side effects: one StoreJob row; one task message on commit."""
    clean = validate_scope(scope)
    job = StoreJob.objects.create(
        store=store,
        requested_by=requested_by,
        scope=clean,
        scope_pseudonymised=pseudonymise_scope(clean),
        scoped_total=scoped_total,
        heartbeat_at=timezone.now(),
    )
    _send_on_commit(job.id)
    return job


def _send_on_commit(job_id: uuid.UUID) -> None:
    from .tasks import store_job_run_task

    transaction.on_commit(lambda: store_job_run_task.delay(str(job_id)))


def _lock_key(job_id: uuid.UUID) -> int:
    # Offset from the engine's keys (the first 8 bytes of a DeletionJob id) by a fixed salt.
    return int.from_bytes(hashlib.sha256(b"storejob:" + job_id.bytes).digest()[:8], "big", signed=True)


def _try_lock(job_id: uuid.UUID) -> bool:
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s)", [_lock_key(job_id)])
        (locked,) = cur.fetchone()
    return bool(locked)


def _unlock(job_id: uuid.UUID) -> None:
    if connection.is_usable():
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s)", [_lock_key(job_id)])


def _holds() -> list[dict[str, Any]]:
    from memories.holds import active_hold_scopes

    return list(active_hold_scopes())


def store_job_verify(
    *, job_id: uuid.UUID | str, connector: Any, scope: dict[str, Any], holds: list[dict[str, Any]]
) -> dict[str, int]:
    """What still matches in the store, per location (connector.verify). A `mem0_oss` store also gets the ids the
    job recorded: Mem0's history table has no user column, its rows of erased memories are found by memory id."""
    if getattr(connector, "kind", "") == Store.Kind.MEM0_OSS:
        ids = list(
            StoreJobId.objects.filter(job_id=uuid.UUID(str(job_id))).values_list("memory_id", flat=True)
        )
        result: dict[str, int] = connector.verify(scope, holds, erased_ids=ids)
        return result
    return dict(connector.verify(scope, holds))


def store_job_run(*, job_id: uuid.UUID | str, budget_seconds: float | None = None) -> bool:
    """Runs one time budget of the job. Returns True when the job is finished (now or before, or run elsewhere),
    False when the budget ran out and the caller must continue it. Connector errors propagate (the task decides:
    StoreUnavailable is retried, any other StoreError fails the job)."""
    job_id = uuid.UUID(str(job_id))
    if not _try_lock(job_id):
        return True  # another delivery is running it; it continues the chain
    try:
        job = StoreJob.objects.select_related("store").get(id=job_id)
        if job.is_finished:
            return True
        now = timezone.now()
        StoreJob.objects.filter(id=job_id).update(
            status=StoreJob.Status.RUNNING,
            started_at=job.started_at or now,
            heartbeat_at=now,
            attempts=F("attempts") + 1,
        )
        from .registry import connector_for

        connector = connector_for(job.store)
        try:
            holds = _holds()
            scope = dict(job.scope or {})
            progress = DurableProgress(job, BUDGET_SECONDS if budget_seconds is None else budget_seconds)
            if not connector.erase(scope, holds, progress):
                return False
            verification = store_job_verify(job_id=job_id, connector=connector, scope=scope, holds=holds)
            if any(verification.values()):
                raise StoreError(
                    "still found after the erasure: "
                    + ", ".join(f"{k} {v}" for k, v in sorted(verification.items()) if v)
                )
            held = connector.count(scope, holds).held if holds else int(progress.state.get("held", 0) or 0)
        finally:
            close = getattr(connector, "close", None)
            if close is not None:
                close()
        _succeed(job_id, verification=verification, held=held)
        return True
    finally:
        _unlock(job_id)


def _succeed(job_id: uuid.UUID, *, verification: dict[str, int], held: int) -> None:
    ids = list(StoreJobId.objects.filter(job_id=job_id).values_list("memory_id", flat=True))
    with transaction.atomic():
        job = StoreJob.objects.select_for_update().get(id=job_id)
        if job.is_finished:
            return
        job.status = StoreJob.Status.SUCCEEDED
        job.digest = ids_digest(ids)
        job.deleted_count = len(ids)
        job.held_count = held
        job.verification = {**verification, "checked_at": timezone.now().isoformat()}
        job.error = ""
        job.finished_at = job.heartbeat_at = timezone.now()
        job.scope = None
        job.save(
            update_fields=[
                "status", "digest", "deleted_count", "held_count", "verification", "error", "finished_at",
                "heartbeat_at", "scope",
            ]
        )  # fmt: skip
        store_job_finished.send(sender=StoreJob, job=job)
    logger.info("store job succeeded", extra={"job": str(job_id), "deleted": job.deleted_count})


def store_job_note_error(*, job_id: uuid.UUID | str, error: str) -> None:
    """Records the last transient error (shown on the request's page while the job is retried)."""
    StoreJob.objects.filter(id=job_id).update(error=error[:300], heartbeat_at=timezone.now())


def store_job_fail(*, job_id: uuid.UUID | str, error: str) -> StoreJob:
    """FAILED (retries exhausted or a permanent error). `error` is a connector's staff message or a class name,
    never data. The state and recorded ids stay, so store_job_retry resumes where it stopped."""
    if connection.connection is not None and not connection.in_atomic_block and not connection.is_usable():
        connection.close()
    with transaction.atomic():
        job = StoreJob.objects.select_for_update().get(id=job_id)
        if not job.is_finished:
            job.status = StoreJob.Status.FAILED
            job.error = error[:300]
            job.finished_at = timezone.now()
            job.save(update_fields=["status", "error", "finished_at"])
            store_job_finished.send(sender=StoreJob, job=job)
    logger.warning("store job failed", extra={"job": str(job_id)})
    return job


def store_job_retry(*, job_id: uuid.UUID | str) -> bool:
    """FAILED → PENDING, sent again on commit; the run continues from the saved state. Returns whether it did."""
    with transaction.atomic():
        updated = StoreJob.objects.filter(id=job_id, status=StoreJob.Status.FAILED).update(
            status=StoreJob.Status.PENDING, error="", finished_at=None, heartbeat_at=timezone.now()
        )
        if updated:
            _send_on_commit(uuid.UUID(str(job_id)))
    return bool(updated)


def store_job_reopen(*, job_id: uuid.UUID | str, scope: dict[str, Any]) -> bool:
    """SUCCEEDED → PENDING for another pass over the scope (given again: a finished job keeps none), sent on commit:
    the store is listed afresh and whatever matches now is erased; ids recorded before are not counted again.
    Used when a request's verification found the subject in the store again. Returns whether it did."""
    clean = validate_scope(scope)
    with transaction.atomic():
        updated = StoreJob.objects.filter(id=job_id, status=StoreJob.Status.SUCCEEDED).update(
            status=StoreJob.Status.PENDING,
            scope=clean,
            state={},
            error="",
            finished_at=None,
            heartbeat_at=timezone.now(),
        )
        if updated:
            _send_on_commit(uuid.UUID(str(job_id)))
    return bool(updated)


def store_jobs_resume_stale(*, stale_seconds: float | None = None) -> int:
    """Re-sends open jobs whose heartbeat is older than stale_seconds (a killed worker, a lost message). A copy
    that finds the job running elsewhere leaves (advisory lock). Side effects: heartbeat_at, messages on commit."""
    stale = settings.DELETION_STALE_SECONDS if stale_seconds is None else stale_seconds
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            StoreJob.objects.select_for_update(skip_locked=True)
            .filter(status__in=StoreJob.OPEN, heartbeat_at__lt=now - timedelta(seconds=stale))
            .values_list("id", flat=True)[:1000]
        )
        StoreJob.objects.filter(id__in=ids).update(heartbeat_at=now)
        for job_id in ids:
            _send_on_commit(job_id)
    if ids:
        logger.warning("re-sent stale store jobs", extra={"count": len(ids)})
    return len(ids)
