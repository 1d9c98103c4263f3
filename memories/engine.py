"""THE deletion engine: every path that removes memories goes through here (DESIGN.md "One deletion engine").

A job deletes its scope in keyset batches ordered by id. Each batch is one SQL statement that deletes the
memories, removes the text of their history (each memory's first history row becomes its content-free DELETE event
in place, its other rows are deleted, a memory without history gets a new DELETE event), and returns the deleted
ids; the job's counters, cursor and running digest are updated in the same transaction. Rows
under legal hold are never selected, and are counted when the job ends. When a pass reaches the end of the scope
the job starts one more pass from the beginning and only finishes when a pass finds nothing, so rows written
behind the cursor while the job ran (random UUIDs land anywhere in the keyspace) are caught too.

Every message sent for a job carries a ticket: the job's `attempts` counter (the number of times the job was
dispatched) as it was when the message was sent. Dispatching (create, continuation after a time budget, retry from
FAILED) increments it in the same transaction, so only the newest message runs; an older or duplicated one finds a
newer ticket and leaves. Two deliveries of the *same* ticket cannot run at once (a session-level advisory lock per
job), and cannot both continue one after the other (the first to finish its budget dispatches a new ticket). So
however many copies of a message exist, exactly one chain of tasks works on a job. A SIGKILLed worker's connection
closes, which releases the lock; the beat sweeper re-sends the current ticket of jobs whose heartbeat went stale,
backing off exponentially per job so that a job merely waiting in a long queue does not pile up copies.
"""

import datetime
import hashlib
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.expressions import RawSQL
from django.utils import timezone

from .models import DeletedIds, DeletionJob, Memory, MemoryHistory
from .pseudonyms import pseudonymise_scope
from .scope import scope_q, validate_scope
from .signals import deletion_job_finished

logger = logging.getLogger(__name__)

_MEMORY = Memory._meta.db_table
_HISTORY = MemoryHistory._meta.db_table


@dataclass
class BatchResult:
    selected: int
    deleted: bytes  # the deleted ids in ascending order, 16 bytes each (uuid_send): no per-id Python object
    history_purged: int
    last_id: uuid.UUID | None

    @property
    def deleted_count(self) -> int:
        return len(self.deleted) // 16

    @property
    def deleted_ids(self) -> list[uuid.UUID]:
        return [uuid.UUID(bytes=self.deleted[i : i + 16]) for i in range(0, len(self.deleted), 16)]


@dataclass
class RunResult:
    job: DeletionJob
    finished: bool
    ran: bool = True  # False when another process holds the job or the message's ticket is stale
    deleted_ids: list[uuid.UUID] = field(default_factory=list)


def chain_digest(digest_hex: str, ids: list[uuid.UUID]) -> str:
    """digest_i = sha256(digest_{i-1} ‖ id_i.bytes), folded over ids in deletion order (ascending per pass).
    Independent of batch boundaries, so a resumed job ends with the same digest as an uninterrupted one."""
    return _chain_digest_packed(digest_hex, b"".join(memory_id.bytes for memory_id in ids))


def _chain_digest_packed(digest_hex: str, packed: bytes) -> str:
    """chain_digest over ids given as consecutive 16-byte values (UUID.bytes), as a batch returns them."""
    digest = bytes.fromhex(digest_hex)
    sha256 = hashlib.sha256
    for i in range(0, len(packed), 16):
        digest = sha256(digest + packed[i : i + 16]).digest()
    return digest.hex()


def _lock_key(job_id: uuid.UUID) -> int:
    return int.from_bytes(job_id.bytes[:8], "big", signed=True)


# Ids of new events (memories without any history row) are time-ordered (UUIDv7 layout: 48-bit millisecond
# timestamp, version 7, random rest), so the history primary key grows at its right edge.
_EVENT_ID = (
    "encode(set_byte(overlay(r PLACING substring(int8send((extract(epoch FROM now()) * 1000)::int8) FROM 3 FOR 6)"
    " FROM 1 FOR 6), 6, (get_byte(r, 6) & 15) | 112), 'hex')::uuid"
)


def _delete_batch(scope: dict[str, Any], cursor: uuid.UUID | None, limit: int) -> BatchResult:
    candidates = Memory.objects.filter(scope_q(scope), legal_hold__isnull=True)
    if cursor is not None:
        candidates = candidates.filter(id__gt=cursor)
    # An index range scan on (entity, id) from the cursor, stopping after `limit` rows: the cost of a batch does
    # not depend on the store's size (checked with EXPLAIN in bench/). The row's ctid comes along so that the
    # DELETE goes straight to the heap tuple the selection just read (a TID scan) instead of probing the primary
    # key again.
    selection = candidates.order_by("id").annotate(tid=RawSQL(f"{_MEMORY}.ctid", ())).values("id", "tid")
    select_sql, params = selection[:limit].query.sql_with_params()
    # The DELETE re-checks id and hold: after waiting on a row lock PostgreSQL re-evaluates them on the row's
    # newest version, so a hold placed while this batch waited is honoured (a row it does not delete now is
    # taken by a later pass: the job only ends after a pass that finds nothing).
    #
    # History: each deleted memory's first history row (by id) is turned into its content-free DELETE event in
    # place (text and categories cleared, created_at = the deletion time); its other rows (UPDATE events) are
    # deleted; a memory without any history row gets a new DELETE event. The in-place UPDATE changes no indexed
    # column, so with the table's fillfactor it is a HOT update: no index insertion, same heap page.
    sql = f"""
        WITH sel AS MATERIALIZED ({select_sql}),
        d AS (
            DELETE FROM {_MEMORY} m
            WHERE m.ctid = ANY(ARRAY(SELECT tid FROM sel)) AND m.legal_hold_id IS NULL
            RETURNING m.id
        ),
        hist AS MATERIALIZED (
            SELECT d.id AS memory_id, h.ctid AS tid,
                   row_number() OVER (PARTITION BY d.id ORDER BY h.id) AS rn
            FROM (SELECT id FROM d ORDER BY id) d LEFT JOIN {_HISTORY} h ON h.memory_id = d.id
        ),
        conv AS (
            UPDATE {_HISTORY} h
            SET event = 'DELETE', old_memory = NULL, new_memory = NULL, categories = '{{}}', created_at = now()
            WHERE h.ctid = ANY(ARRAY(SELECT tid FROM hist WHERE rn = 1 AND tid IS NOT NULL))
            RETURNING 1
        ),
        extra AS (
            DELETE FROM {_HISTORY} h WHERE h.ctid = ANY(ARRAY(SELECT tid FROM hist WHERE rn > 1)) RETURNING 1
        ),
        ev AS (
            INSERT INTO {_HISTORY} (id, memory_id, event, categories, created_at)
            SELECT {_EVENT_ID}, hist.memory_id, 'DELETE', '{{}}', now()
            FROM hist, LATERAL (SELECT uuid_send(gen_random_uuid()) AS r, hist.memory_id AS per_row) AS rnd
            WHERE hist.tid IS NULL
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM sel),
               (SELECT coalesce(string_agg(uuid_send(id), ''::bytea ORDER BY id), ''::bytea) FROM d),
               (SELECT count(tid) FROM hist),
               (SELECT id FROM sel ORDER BY id DESC LIMIT 1),
               (SELECT count(*) FROM conv),
               (SELECT count(*) FROM extra),
               (SELECT count(*) FROM ev)
    """
    with connection.cursor() as cur:
        cur.execute(sql, params)
        selected, deleted, history_purged, last_id, converted, extra, inserted = cur.fetchone()
    batch = BatchResult(selected, bytes(deleted), history_purged, last_id)
    # Cannot happen; refuse to record progress that would not add up.
    if converted + inserted != batch.deleted_count or converted + extra != history_purged:
        raise RuntimeError("deletion batch wrote a different number of events than it deleted memories")
    return batch


def deletion_job_create(
    *, kind: str, scope: dict[str, Any], requested_by: str, enqueue: bool = True
) -> DeletionJob:
    """Creates a PENDING job. Side effects: one DeletionJob row; with enqueue, deletion_job_run_task is sent
    to the broker when the surrounding transaction commits."""
    job = DeletionJob.objects.create(
        kind=kind,
        scope=validate_scope(scope),
        scope_pseudonymised=pseudonymise_scope(scope),
        requested_by=requested_by,
    )
    if enqueue:
        deletion_job_enqueue(job_id=job.id)
    return job


def deletion_job_enqueue(*, job_id: uuid.UUID) -> int:
    """Dispatches the job: increments its ticket (`attempts`) and sends deletion_job_run_task(job_id, ticket) when
    the surrounding transaction commits. Any message with an older ticket becomes a no-op. Returns the ticket."""
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute(
                f"UPDATE {DeletionJob._meta.db_table} SET attempts = attempts + 1, heartbeat_at = now()"
                " WHERE id = %s RETURNING attempts",
                [job_id],
            )
            (ticket,) = cur.fetchone()
        _send_on_commit(job_id, ticket)
    return int(ticket)


def _send_on_commit(job_id: uuid.UUID, ticket: int) -> None:
    from .tasks import deletion_job_run_task

    transaction.on_commit(lambda: deletion_job_run_task.delay(str(job_id), ticket))


def _finish(job: DeletionJob, *, status: str, error: str = "") -> None:
    if status == DeletionJob.Status.SUCCEEDED and job.scope:
        job.held_count = Memory.objects.filter(scope_q(job.scope), legal_hold__isnull=False).count()
    job.status = status
    job.error = error
    job.finished_at = timezone.now()
    job.heartbeat_at = job.finished_at
    job.scope = None  # the clear scope goes; scope_pseudonymised stays
    job.save(update_fields=["status", "error", "finished_at", "heartbeat_at", "scope", "held_count"])
    # Inside the job's final transaction: a subscriber's state change commits (or rolls back) with it.
    deletion_job_finished.send(sender=DeletionJob, job=job)


def deletion_job_run(
    *,
    job_id: uuid.UUID | str,
    ticket: int | None = None,
    budget_seconds: float | None = None,
    batch_size: int | None = None,
    collect_ids: bool = False,
) -> RunResult:
    """Runs batches of a job until it finishes or the time budget is spent.

    With a ticket (a Celery delivery), runs only if the ticket is the job's current one, and when the budget is
    spent dispatches a continuation (new ticket) in the transaction of the last batch. Without one (a synchronous
    caller), runs unconditionally and never dispatches.

    Side effects per batch (one transaction): memories deleted; their history text removed, leaving exactly one
    content-free DELETE event per memory (the first history row converted in place, the others deleted, a new
    event for a memory without history); the job's counters/cursor/digest/heartbeat updated. On completion the job becomes
    SUCCEEDED, its clear scope is dropped and `deletion_job_finished` is sent inside that transaction.
    """
    job_id = uuid.UUID(str(job_id))
    budget = settings.DELETION_TASK_BUDGET_SECONDS if budget_seconds is None else budget_seconds
    limit = batch_size or settings.DELETION_BATCH_SIZE
    key = _lock_key(job_id)
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s)", [key])
        (locked,) = cur.fetchone()
    if not locked:  # the same ticket is being worked on right now; that run continues the chain
        return RunResult(job=DeletionJob.objects.get(id=job_id), finished=False, ran=False)
    collected: list[uuid.UUID] = []
    started = time.monotonic()
    try:
        with transaction.atomic():
            job = DeletionJob.objects.select_for_update().get(id=job_id)
            if job.is_finished:
                return RunResult(job=job, finished=True, ran=False)
            if ticket is not None and job.attempts != ticket:
                return RunResult(job=job, finished=False, ran=False)  # superseded by a newer dispatch
            job.status = DeletionJob.Status.RUNNING
            job.started_at = job.started_at or timezone.now()
            job.heartbeat_at = timezone.now()
            job.save(update_fields=["status", "started_at", "heartbeat_at"])
        while True:
            with transaction.atomic():
                job = DeletionJob.objects.select_for_update().get(id=job_id)
                if job.is_finished:
                    return RunResult(job=job, finished=True, deleted_ids=collected)
                assert job.scope is not None
                batch = _delete_batch(job.scope, job.cursor, limit)
                if batch.selected == 0:
                    if job.cursor is None:
                        _finish(job, status=DeletionJob.Status.SUCCEEDED)
                        logger.info(
                            "deletion job finished",
                            extra={"job": str(job.id), "deleted": job.deleted_count, "held": job.held_count},
                        )
                        return RunResult(job=job, finished=True, deleted_ids=collected)
                    # End of a pass: sweep once more from the start for rows written behind the cursor.
                    job.cursor = None
                    job.passes += 1
                    job.heartbeat_at = timezone.now()
                    job.save(update_fields=["cursor", "passes", "heartbeat_at"])
                    continue
                if job.kind == DeletionJob.Kind.ERASURE and batch.deleted:
                    # What the erasure verification looks up (DeletedIds); same transaction as the batch.
                    DeletedIds.objects.create(job_id=job.id, batch=job.batches + 1, ids=batch.deleted)
                job.cursor = batch.last_id
                job.deleted_count += batch.deleted_count
                job.history_purged_count += batch.history_purged
                job.digest = _chain_digest_packed(job.digest, batch.deleted)
                job.batches += 1
                job.heartbeat_at = timezone.now()
                fields = [
                    "cursor",
                    "deleted_count",
                    "history_purged_count",
                    "digest",
                    "batches",
                    "heartbeat_at",
                ]
                out_of_time = time.monotonic() - started >= budget
                if out_of_time and ticket is not None:
                    job.attempts += 1  # the continuation's ticket, committed with this batch
                    fields.append("attempts")
                    _send_on_commit(job.id, job.attempts)
                job.save(update_fields=fields)
            if collect_ids:
                collected.extend(batch.deleted_ids)
            if out_of_time:
                return RunResult(job=job, finished=False, deleted_ids=collected)
    finally:
        if connection.is_usable():
            with connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", [key])


def deletion_job_fail(*, job_id: uuid.UUID | str, error: str) -> DeletionJob:
    """Marks a job FAILED after its retries ran out (the error is a class name, never data). Sends
    `deletion_job_finished`. Its cursor and counters stay, so deletion_job_retry resumes where it stopped."""
    # Called right after a database error: a broken connection is replaced (never one inside a transaction).
    if connection.connection is not None and not connection.in_atomic_block and not connection.is_usable():
        connection.close()
    with transaction.atomic():
        job = DeletionJob.objects.select_for_update().get(id=job_id)
        if not job.is_finished:
            job.status = DeletionJob.Status.FAILED
            job.error = error[:200]
            job.finished_at = timezone.now()
            job.save(update_fields=["status", "error", "finished_at"])
            deletion_job_finished.send(sender=DeletionJob, job=job)
    return job


def deletion_job_retry(*, job_id: uuid.UUID | str) -> DeletionJob:
    """FAILED → PENDING and re-dispatched (new ticket); the next run continues from the saved cursor and counters."""
    with transaction.atomic():
        job = DeletionJob.objects.select_for_update().get(id=job_id)
        if job.status == DeletionJob.Status.FAILED:
            job.status = DeletionJob.Status.PENDING
            job.error = ""
            job.finished_at = None
            job.save(update_fields=["status", "error", "finished_at"])
            job.attempts = deletion_job_enqueue(job_id=job.id)
    return job


def _sweep_key(job_id: uuid.UUID) -> str:
    return f"deletion-sweep:{job_id}"


def deletion_jobs_resume_stale(*, stale_seconds: float | None = None) -> int:
    """Re-sends the current ticket of open jobs whose heartbeat is older than stale_seconds (their task vanished:
    a killed worker, a lost broker message, a send that failed after commit). The ticket is not incremented, so a
    copy still waiting in a long queue and the re-sent one are the same ticket: whichever runs first works, the
    other finds the lock held or a newer ticket. Without progress in between, the re-sends of one job back off
    exponentially (after stale, 2×stale, 4×stale, … tracked in the cache) so a backlog does not fill with copies.
    Side effects: heartbeat_at of each re-sent job; messages sent on commit. Returns how many were sent."""
    stale = settings.DELETION_STALE_SECONDS if stale_seconds is None else stale_seconds
    now = timezone.now()
    sent = 0
    with transaction.atomic():
        # SKIP LOCKED: a job whose row is locked is inside a batch right now, hence alive.
        candidates = (
            DeletionJob.objects.select_for_update(skip_locked=True)
            .filter(status__in=[DeletionJob.Status.PENDING, DeletionJob.Status.RUNNING])
            .filter(
                Q(heartbeat_at__lt=now - datetime.timedelta(seconds=stale))
                | Q(heartbeat_at__isnull=True, created_at__lt=now - datetime.timedelta(seconds=stale))
            )
            .order_by("created_at")
            .values_list("id", "attempts", "heartbeat_at", "created_at")[:1000]
        )
        for job_id, ticket, heartbeat, created in candidates:
            last = heartbeat or created
            resends, seen = cache.get(_sweep_key(job_id)) or (0, None)
            if seen != last.isoformat():
                resends = 0  # progress since our last re-send (or none yet): start the back-off again
            if (now - last).total_seconds() < stale * 2 ** min(resends, 10):
                continue
            DeletionJob.objects.filter(id=job_id).update(heartbeat_at=now)
            cache.set(_sweep_key(job_id), (resends + 1, now.isoformat()), timeout=7 * 86400)
            _send_on_commit(job_id, ticket)
            sent += 1
    if sent:
        logger.warning("re-sent stale deletion jobs", extra={"count": sent})
    return sent


def deletion_jobs_history_text_remaining(*, job_ids: list[uuid.UUID]) -> int:
    """How many history rows still hold text for the memories that these erasure jobs deleted (0 after a correct
    run: the batch statement converted them; a row written concurrently behind it would show here). One query:
    the recorded ids unpacked in SQL, each looked up through history_memory_id_idx."""
    if not job_ids:
        return 0
    with connection.cursor() as cur:
        cur.execute(
            # = ANY(ARRAY(…)): an index scan with the ids as one array, never a hash join over the whole table
            f"""SELECT count(*) FROM {_HISTORY} h WHERE h.memory_id = ANY(ARRAY(
                    SELECT encode(substring(b.ids FROM i * 16 + 1 FOR 16), 'hex')::uuid
                    FROM {DeletedIds._meta.db_table} b, generate_series(0, length(b.ids) / 16 - 1) AS i
                    WHERE b.job_id = ANY(%s)))
                AND (h.old_memory IS NOT NULL OR h.new_memory IS NOT NULL)""",
            [list(job_ids)],
        )
        (count,) = cur.fetchone()
    return int(count)


def deletion_jobs_ids_discard(*, job_ids: list[uuid.UUID]) -> int:
    """Drops the recorded deleted ids of these jobs (once their verification no longer needs them). Returns how
    many batch rows went."""
    deleted, _ = DeletedIds.objects.filter(job_id__in=job_ids).delete()
    return deleted


def memories_delete_now(*, kind: str, scope: dict[str, Any], requested_by: str) -> RunResult:
    """Synchronous use of the engine for request-sized scopes (one memory, a batch of ≤1000 ids): creates the
    job and runs it to the end in this process. Returns the deleted ids."""
    job = deletion_job_create(kind=kind, scope=scope, requested_by=requested_by, enqueue=False)
    result = deletion_job_run(job_id=job.id, budget_seconds=float("inf"), collect_ids=True)
    return result


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
