"""The run: a job's batches, one transaction each, until the job ends or the run's time budget is spent.

A run is a sequence of named steps over one RunState: it takes the job's advisory lock (_job_session), begins the
job (_begin: ticket check, RUNNING, lanes or not), runs its lanes (_lanes_step), adds their counts (_lanes_add),
runs batches (_batches), redoes a transaction whose rows changed under its fast statement (RunState.rollback_to),
and ends the job (_end) or dispatches its continuation. Every batch of a run that owns its transactions runs in
REPEATABLE READ (the fast statement needs it); a transaction that failed on a row changed after its snapshot is
redone in READ COMMITTED with the careful statement; the job ends in READ COMMITTED.

Rows written behind the cursor while a pass ran are caught by a straggler pass: memory ids are UUIDv7
(memories/ids.py), so a row written after the first pass began has an id at or after that instant, less a margin
for clocks and long transactions (DELETION_STRAGGLER_MARGIN_SECONDS); the straggler pass starts there instead of at
the beginning of the scope, and the job only finishes after a straggler pass that deleted nothing."""

import contextlib
import datetime
import enum
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Sum
from django.utils import timezone

from ..holds import held_count
from ..ids import uuid7_floor
from ..models import DeletionJob
from ..signals import deletion_job_finished
from .batch import BatchResult, BatchStatement
from .digests import RunningDigest
from .dispatch import deletion_job_continue, deletion_job_create
from .lanes import lanes_create, lanes_run

logger = logging.getLogger(__name__)

# What each batch's transaction saves of the job (its progress record).
_PROGRESS_FIELDS = (
    "cursor",
    "deleted_count",
    "history_purged_count",
    "batches",
    "heartbeat_at",
    "passes",
    "pass_deleted_count",
)


@dataclass
class RunResult:
    job: DeletionJob
    finished: bool
    ran: bool = True  # False when another process holds the job or the message's ticket is stale
    deleted_ids: list[uuid.UUID] = field(default_factory=list)
    packed: bytes = b""  # with collect_packed: every id this run deleted, ascending, 16 bytes each
    whole: bool = False  # this run started the job from nothing (packed then holds all the job deleted)


class Lanes(enum.Enum):
    NONE = "none"  # no lanes, or their counts are the job's already
    OPEN = "open"  # the run's next step runs them
    DONE = (
        "done"  # all finished: their counts are added in the next transaction, and the straggler pass follows
    )


@dataclass(frozen=True)
class _Checkpoint:
    """What a transaction that rolls back must give back to the run."""

    begun: bool
    lanes: Lanes
    whole: bool
    digest: RunningDigest
    collected: int
    packed: int


@dataclass
class RunState:
    """What a run knows between its transactions. `job` is the run's copy of the job row, read (and locked) at the
    start of the first transaction and again after its lanes ran or a transaction rolled back: in between no other
    writer changes the row while the run holds the job's advisory lock (the sweeper only touches a stale
    heartbeat)."""

    job_id: uuid.UUID
    ticket: int | None
    budget: float
    limit: int
    own_transactions: bool  # else each "transaction" is a savepoint of the caller's
    lanes_allowed: bool
    collect_ids: bool
    collect_packed: bool
    started: float = field(default_factory=time.monotonic)
    job: DeletionJob | None = None
    scope: dict | None = None  # the job's clear scope, as read
    statement: BatchStatement | None = None  # built once per run
    digest: RunningDigest = field(default_factory=lambda: RunningDigest(complete=False))
    whole: bool = False  # the run started the job from nothing
    begun: bool = False  # the run has checked its ticket and made the job RUNNING
    refetch: bool = True  # read and lock the job row in the next transaction
    lanes: Lanes = Lanes.NONE
    collected: list[uuid.UUID] = field(default_factory=list)
    packed: list[bytes] = field(default_factory=list)

    def time_left(self) -> float:
        return max(self.budget - (time.monotonic() - self.started), 0.0)

    def checkpoint(self) -> _Checkpoint:
        return _Checkpoint(
            self.begun, self.lanes, self.whole, self.digest.copy(), len(self.collected), len(self.packed)
        )

    def rollback_to(self, checkpoint: _Checkpoint) -> None:
        """The transaction rolled back: back to the checkpoint taken before it; the job row is read again and the
        batch is redone by the careful statement."""
        self.begun, self.lanes, self.whole = checkpoint.begun, checkpoint.lanes, checkpoint.whole
        self.digest = checkpoint.digest
        del self.collected[checkpoint.collected :], self.packed[checkpoint.packed :]
        self.refetch = True
        assert self.statement is not None
        self.statement.careful = True

    def record(self, batch: BatchResult) -> None:
        """A batch's ids for the running digest and what the caller asked to collect."""
        self.digest.feed(batch.packed)
        if self.collect_ids:
            self.collected.extend(batch.deleted)
        if self.collect_packed:
            self.packed.append(batch.packed)

    def result(self, *, finished: bool) -> "RunResult":
        assert self.job is not None
        return RunResult(
            job=self.job,
            finished=finished,
            deleted_ids=self.collected,
            packed=b"".join(self.packed),
            whole=self.whole,
        )


def _lock_key(job_id: uuid.UUID) -> int:
    return int.from_bytes(job_id.bytes[:8], "big", signed=True)


def _isolation(level: psycopg.IsolationLevel | None) -> None:
    """The isolation level of the session's next transactions, set on psycopg's connection so that it goes out with
    BEGIN (no extra round trip). Only a run that owns its transactions sets it; _job_session restores it."""
    connection.connection.isolation_level = level


@contextlib.contextmanager
def _job_session(job_id: uuid.UUID, *, own_transactions: bool) -> Iterator[bool]:
    """The job's session-level advisory lock (yields whether it was taken: two deliveries of the same ticket cannot
    run at once). While it is held the session plans prepared statements generically (the batch statement's; see
    BatchStatement), unless prepared statements are off (DATABASE_PREPARED_STATEMENTS=0, behind a pooler that shares
    sessions). On exit the lock, plan_cache_mode and the isolation level are as they were."""
    with connection.cursor() as cur:
        prepared = connection.connection.prepare_threshold is not None
        cur.execute(
            "SELECT l.locked, l.previous,"
            " CASE WHEN l.locked AND %s THEN set_config('plan_cache_mode', 'force_generic_plan', false) END"
            " FROM (SELECT pg_try_advisory_lock(%s) AS locked, current_setting('plan_cache_mode') AS previous) l",
            [prepared, _lock_key(job_id)],
        )
        locked, previous_plan_cache_mode, _ = cur.fetchone()
    if not locked:
        yield False
        return
    previous_isolation = connection.connection.isolation_level
    try:
        yield True
    finally:
        if connection.is_usable():
            with connection.cursor() as cur:
                cur.execute(
                    "SELECT pg_advisory_unlock(%s),"
                    " CASE WHEN %s THEN set_config('plan_cache_mode', %s, false) END",
                    [_lock_key(job_id), prepared, previous_plan_cache_mode],
                )
            if own_transactions:
                _isolation(previous_isolation)


def straggler_cursor(job: DeletionJob) -> uuid.UUID:
    """Where a straggler pass starts: just below any id generated since the job started, less the margin."""
    started = job.started_at or job.created_at
    return uuid7_floor(started - datetime.timedelta(seconds=settings.DELETION_STRAGGLER_MARGIN_SECONDS))


def _straggler_pass_start(job: DeletionJob) -> None:
    job.cursor = straggler_cursor(job)
    job.passes += 1
    job.pass_deleted_count = 0


def job_finish(job: DeletionJob, *, digest: RunningDigest, also: list[str]) -> None:
    """Ends the job SUCCEEDED in one UPDATE (with the fields named in `also` that the caller changed too): its held
    count, its digest; its clear scope goes (scope_pseudonymised stays). Sends `deletion_job_finished` inside the
    job's final transaction, so a subscriber's state change commits (or rolls back) with it."""
    if job.scope and job.parent_id is None:  # a lane's held rows are counted by its parent
        job.held_count = held_count(job.scope)
    job.digest = digest.digest(job)
    job.status = DeletionJob.Status.SUCCEEDED
    job.error = ""
    job.finished_at = timezone.now()
    job.heartbeat_at = job.finished_at
    job.scope = None
    fields = ["status", "error", "finished_at", "heartbeat_at", "scope", "held_count", "digest", *also]
    job.save(update_fields=list(dict.fromkeys(fields)))
    deletion_job_finished.send(sender=DeletionJob, job=job)


def _begin(state: RunState, job: DeletionJob, fields: list[str]) -> RunResult | None:
    """The run's first transaction: leaves at once (a result) when the job has finished or the message's ticket is
    stale; else the job is RUNNING and, on its first pass, handed to lanes when its scope holds more than a batch
    (or when a run before this one did so)."""
    if job.is_finished:
        return RunResult(job=job, finished=True, ran=False)
    if state.ticket is not None and job.attempts != state.ticket:  # superseded by a newer dispatch
        return RunResult(job=job, finished=False, ran=False)
    job.status = DeletionJob.Status.RUNNING
    started_before = job.started_at is not None  # only then can it have lanes already
    job.started_at = job.started_at or timezone.now()
    fields += ["status", "started_at"]
    state.whole = job.deleted_count == 0
    state.digest = RunningDigest(complete=state.whole)
    state.begun = True
    if job.parent_id is None and job.passes == 0:
        if started_before and job.lanes.exists():
            state.lanes = Lanes.OPEN
        elif state.lanes_allowed and job.cursor is None and lanes_create(job, state.limit):
            state.lanes = Lanes.OPEN
    return None


def _lanes_step(state: RunState) -> bool:
    """Runs the job's lanes for what is left of the budget; True when all have finished."""
    assert state.scope is not None
    if not lanes_run(
        state.job_id,
        budget=state.time_left(),
        limit=state.limit,
        digest=state.digest,
        scope=state.scope,
        run_lane=deletion_job_run,
    ):
        return False
    state.lanes = Lanes.DONE
    state.refetch = True
    return True


def _lanes_continue(state: RunState) -> RunResult:
    """The budget ran out while lanes ran: the job's heartbeat, and its continuation when this run holds its current
    ticket."""
    with transaction.atomic():
        job = DeletionJob.objects.select_for_update().get(id=state.job_id)
        job.heartbeat_at = timezone.now()
        fields = ["heartbeat_at"]
        if state.ticket is not None and job.attempts == state.ticket and not job.is_finished:
            deletion_job_continue(job, fields)
        job.save(update_fields=fields)
    return RunResult(job=job, finished=False)


def _lanes_add(state: RunState, job: DeletionJob) -> None:
    """The first pass is over: the lanes' counts become the job's, once (passes goes 0 → 1 in the same
    transaction), and the straggler pass follows."""
    totals = job.lanes.aggregate(
        deleted=Sum("deleted_count"), history=Sum("history_purged_count"), batches=Sum("batches")
    )
    job.deleted_count += totals["deleted"] or 0
    job.history_purged_count += totals["history"] or 0
    job.batches += totals["batches"] or 0
    _straggler_pass_start(job)
    state.lanes = Lanes.NONE


def _batches(state: RunState, job: DeletionJob) -> bool:
    """One batch; a pass that ends in it is followed by its straggler batch at once, so a small job needs one
    transaction for its batches (and one to end). True when the job has deleted all it will."""
    assert job.scope is not None
    if state.statement is None:
        state.statement = BatchStatement(job.scope, state.limit, end=job.cursor_end)
    for _ in range(2):
        batch = state.statement.run(job, want_ids=state.collect_ids, repeatable_read=state.own_transactions)
        state.record(batch)
        job.deleted_count += batch.deleted_count
        job.history_purged_count += batch.history_purged
        job.batches += 1 if batch.deleted_count else 0
        job.pass_deleted_count += batch.deleted_count
        if batch.bound is not None:
            job.cursor = batch.bound
            return False
        if (
            "memory_ids" in job.scope
            or job.parent_id is not None
            or (job.passes > 0 and job.pass_deleted_count == 0)
        ):
            # Named ids cannot be written behind the cursor; a lane's range ends with its first pass (its parent
            # makes the straggler pass); otherwise a straggler pass found nothing.
            return True
        _straggler_pass_start(job)  # over the ids that can have been written since the job started
    return False


def _end(state: RunState, fields: list[str]) -> None:
    """The job's end, in a READ COMMITTED transaction of its own: its receivers (an erasure request's move to
    `deleted`, audit entries chained onto the latest one) must read what other transactions have committed, not a
    snapshot taken before they took their locks. If the process dies just before it, the job's next run makes one
    more (empty) straggler batch and ends then. The batch statement turned synchronous_commit off for the batches'
    transactions (after a crash a batch and its progress record roll back together, and the job redoes them); this
    one, which says SUCCEEDED, commits synchronously, and its flush covers every commit written before it."""
    job = state.job
    assert job is not None
    if state.own_transactions:
        _isolation(psycopg.IsolationLevel.READ_COMMITTED)
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("SET LOCAL synchronous_commit = on")
        job_finish(job, digest=state.digest, also=fields)
    logger.info(
        "deletion job finished",
        extra={"job": str(job.id), "deleted": job.deleted_count, "held": job.held_count},
    )


def _step(state: RunState) -> RunResult | None:
    """One transaction of the run (and the job's end when it finished in it). Returns the run's result when the run
    is over, None when the next step follows."""
    checkpoint = state.checkpoint()
    if state.own_transactions:
        careful = state.statement is not None and state.statement.careful
        _isolation(
            psycopg.IsolationLevel.READ_COMMITTED if careful else psycopg.IsolationLevel.REPEATABLE_READ
        )
    fields = list(_PROGRESS_FIELDS)
    try:
        with transaction.atomic():
            if state.refetch:
                state.job = DeletionJob.objects.select_for_update().get(id=state.job_id)
                state.scope = state.job.scope
                state.refetch = False
            job = state.job
            assert job is not None
            if not state.begun:
                early = _begin(state, job, fields)
                if early is not None:
                    return early
                if state.lanes is Lanes.OPEN:
                    job.save(update_fields=fields)
                    return None
            elif job.is_finished:
                return RunResult(job=job, finished=True, deleted_ids=state.collected)
            if state.lanes is Lanes.DONE:
                _lanes_add(state, job)
            finished = _batches(state, job)
            job.heartbeat_at = timezone.now()
            out_of_time = not finished and state.time_left() <= 0
            if out_of_time and state.ticket is not None:
                deletion_job_continue(job, fields)  # committed with this batch
            job.save(update_fields=fields)
    except DatabaseError as exc:
        if state.statement is None or not BatchStatement.rows_changed(exc):
            raise
        logger.info(
            "batch redone by the careful statement: rows changed under it", extra={"job": str(state.job_id)}
        )
        state.rollback_to(checkpoint)
        return None
    if finished:
        _end(state, fields)
    if finished or out_of_time:
        return state.result(finished=finished)
    return None


def deletion_job_run(
    *,
    job_id: uuid.UUID | str,
    ticket: int | None = None,
    budget_seconds: float | None = None,
    batch_size: int | None = None,
    collect_ids: bool = False,
    collect_packed: bool = False,
) -> RunResult:
    """Runs batches of a job until it finishes or the time budget is spent.

    With a ticket (a Celery delivery), runs only if the ticket is the job's current one, and when the budget is
    spent dispatches a continuation (new ticket) in the transaction of the last batch. Without one (a synchronous
    caller), runs unconditionally and never dispatches.

    Lanes: when a job's scope holds more than one batch (and the run owns its transactions), its first pass is
    split into DELETION_LANES child jobs over consecutive id ranges (memories.engine.lanes), run side by side in
    threads, each with the same batches, progress records and tombstones as any job; when all have finished,
    their counts are added to the job's and the job goes on with its straggler pass. A resumed run resumes the
    unfinished lanes.

    Side effects per batch (one transaction): memories deleted; their history rows deleted; one MemoryTombstone
    (the batch's DELETE events); the job's counters/cursor/heartbeat updated. On completion the job becomes
    SUCCEEDED with its held count and digest, its clear scope is dropped and `deletion_job_finished` is sent
    inside that transaction.
    """
    job_id = uuid.UUID(str(job_id))
    own_transactions = not connection.in_atomic_block
    state = RunState(
        job_id=job_id,
        ticket=ticket,
        budget=settings.DELETION_TASK_BUDGET_SECONDS if budget_seconds is None else budget_seconds,
        limit=batch_size or settings.DELETION_BATCH_SIZE,
        own_transactions=own_transactions,
        lanes_allowed=settings.DELETION_LANES > 1 and not collect_ids and own_transactions,
        collect_ids=collect_ids,
        collect_packed=collect_packed,
    )
    with _job_session(job_id, own_transactions=own_transactions) as locked:
        if not locked:  # the same ticket is being worked on right now; that run continues the chain
            return RunResult(job=DeletionJob.objects.get(id=job_id), finished=False, ran=False)
        while True:
            if state.lanes is Lanes.OPEN and not _lanes_step(state):
                return _lanes_continue(state)
            result = _step(state)
            if result is not None:
                return result


def memories_delete_now(*, kind: str, scope: dict, requested_by: str) -> RunResult:
    """Synchronous use of the engine for request-sized scopes (one memory, a batch of ≤1000 ids): creates the
    job and runs it to the end in this process. Returns the deleted ids."""
    job = deletion_job_create(kind=kind, scope=scope, requested_by=requested_by, enqueue=False)
    return deletion_job_run(job_id=job.id, budget_seconds=float("inf"), collect_ids=True)
