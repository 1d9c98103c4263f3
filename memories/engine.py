"""THE deletion engine: every path that removes memories goes through here (DESIGN.md "One deletion engine").

A job deletes its scope in keyset batches ordered by id. Each batch is one SQL statement: it selects the next
memories of the scope after the cursor (an index range scan on (entity, id) that stops after a batch), and hands
the unheld ones to the server-side function memories_delete_batch (migration 0005), which deletes them by their
physical address (no second search), deletes the history rows (the ones holding text: UPDATE events) of those
that have any, and records the batch's ids, ascending, as one MemoryTombstone row: the content-free DELETE events.
The job's counters and cursor are updated in the same transaction. Rows under legal hold are never deleted, and
are counted when the job ends.

Rows written behind the cursor while a pass ran are caught by a straggler pass: memory ids are UUIDv7
(memories/ids.py), so a row written after the first pass began has an id at or after that instant, less a margin
for clocks and long transactions (DELETION_STRAGGLER_MARGIN_SECONDS); the straggler pass starts there instead of at
the beginning of the scope, and the job only finishes after a straggler pass that deleted nothing. When the job
ends, its digest is the sha256 of its deleted ids in ascending order (16 bytes each), computed from its tombstones:
the same whatever the batch boundaries, interruptions or passes.

A job whose scope holds more than one batch runs its first pass in lanes: child jobs over consecutive id ranges,
run side by side by the job's own run in threads of the worker (each on its own connection), each with its own
progress record; when all have finished, their counts are added to the job's in the transaction that starts the
job's straggler pass (until then the job's progress is the sum of its lanes': memories.selectors.deletion_job_get).
Lanes carry no tickets and are never swept on their own (the job's next run resumes them). Once they have finished,
a lane thread reads the scope's index entries once while the job ends (_scope_settle), so that the next reader (an
erasure's verification) finds the deleted rows' entries marked dead.

Every batch of a run that owns its transactions runs in REPEATABLE READ, which lets its DELETE run without
RETURNING; a transaction that fails on a row changed after its snapshot is redone in READ COMMITTED with the
careful batch statement (_BatchStatement).

Every message sent for a job carries a ticket: the job's `attempts` counter (the number of times the job was
dispatched) as it was when the message was sent. Dispatching (create, continuation after a time budget, retry from
FAILED) increments it in the same transaction, so only the newest message runs; an older or duplicated one finds a
newer ticket and leaves. Two deliveries of the *same* ticket cannot run at once (a session-level advisory lock per
job), and cannot both continue one after the other (the first to finish its budget dispatches a new ticket). So
however many copies of a message exist, exactly one chain of tasks works on a job. A SIGKILLed worker's connection
closes, which releases the lock; the beat sweeper re-sends the current ticket of jobs whose heartbeat went stale,
backing off exponentially per job so that a job merely waiting in a long queue does not pile up copies.
"""

import contextlib
import datetime
import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q, QuerySet, Sum
from django.db.models.expressions import RawSQL
from django.utils import timezone

from .ids import uuid7_floor
from .models import ENTITY_FIELDS, DeletionJob, Memory, MemoryHistory, MemoryTombstone
from .pseudonyms import pseudonymise_scope
from .scope import scope_q, validate_scope
from .signals import deletion_job_finished

logger = logging.getLogger(__name__)

_MEMORY = Memory._meta.db_table
_HISTORY = MemoryHistory._meta.db_table
_TOMBSTONE = MemoryTombstone._meta.db_table
EMPTY_DIGEST = hashlib.sha256(b"").hexdigest()


@dataclass
class BatchResult:
    deleted_count: int
    history_purged: int
    bound: uuid.UUID | None  # the batch's upper bound; None when the batch reached the end of the scope
    deleted: list[uuid.UUID]  # ascending; only when asked for (no Python object per id otherwise)
    packed: bytes  # the deleted ids ascending, 16 bytes each (uuid_send), for the running digest


@dataclass
class RunResult:
    job: DeletionJob
    finished: bool
    ran: bool = True  # False when another process holds the job or the message's ticket is stale
    deleted_ids: list[uuid.UUID] = field(default_factory=list)
    packed: bytes = b""  # with collect_packed: every id this run deleted, ascending, 16 bytes each
    whole: bool = False  # this run started the job from nothing (packed then holds all the job deleted)


def ids_digest(ids: list[uuid.UUID]) -> str:
    """sha256 over the ids in ascending order, 16 bytes each (UUID.bytes): what a job's and a certificate's
    deleted-ids digest is. Anyone holding the list of ids can recompute it."""
    return hashlib.sha256(b"".join(memory_id.bytes for memory_id in sorted(set(ids)))).hexdigest()


def jobs_ids_digest(*, job_ids: list[uuid.UUID]) -> str:
    """ids_digest over everything these jobs deleted, computed in SQL from their tombstones."""
    with connection.cursor() as cur:
        cur.execute(
            f"""SELECT encode(sha256(coalesce(string_agg(uuid_send(u), ''::bytea ORDER BY u), ''::bytea)), 'hex')
                FROM (SELECT DISTINCT u FROM {_TOMBSTONE} t, unnest(t.ids) AS u WHERE t.job_id = ANY(%s)) d""",
            [list(job_ids)],
        )
        (digest,) = cur.fetchone()
    return str(digest)


def _lock_key(job_id: uuid.UUID) -> int:
    return int.from_bytes(job_id.bytes[:8], "big", signed=True)


_NIL = uuid.UUID(int=0)  # "no cursor": below every memory id
_CURSOR = uuid.UUID("c0c0c0c0-0000-4000-8000-00000000c0de")  # stands for the cursor while the SQL is built


def _scope_parts(scope: dict[str, Any], cursor: Any) -> tuple[list[QuerySet[Memory]], tuple[str, ...]]:
    """The scope after the cursor, split by the values of its first entity column, and the keyset order.

    Each value is matched as `(column, id) > (value, cursor) AND column <= value`, and the order is (column, id):
    exactly the (entity, id) index, whose scan starts right after the cursor (the row comparison is its start key)
    and ends after the value. Two other spellings are slower: with `column = value AND id > cursor` PostgreSQL
    knows the column is constant and, with time-ordered ids (whose primary key follows the heap), often prefers
    walking the primary key from the cursor and filtering, which reads other subjects' rows by the thousand; with
    `column = ANY(ARRAY[value])` next to the row comparison, the index scan starts at the value's first entry and
    steps over every entry before the cursor (a job's batches would cost more and more). The order is still the
    id order (one value per part)."""
    for column in ENTITY_FIELDS:
        if column not in scope:
            continue
        value = scope[column]
        rest = {k: v for k, v in scope.items() if k != column}
        base = Memory.objects.filter(scope_q(rest)) if rest else Memory.objects.all()
        parts = [
            base.extra(
                where=[
                    f"({_MEMORY}.{column}, {_MEMORY}.id) > (%s, %s::uuid)",
                    f"{_MEMORY}.{column} <= %s",
                ],
                params=[one, cursor, one],
            )
            for one in ([value] if isinstance(value, str) else value)
        ]
        return parts, (column, "id")
    return [Memory.objects.filter(scope_q(scope), id__gt=cursor)], ("id",)


_UUID_ARRAY_OID = 2951


def _ids_bytes(data: bytes) -> bytes:
    """The 16-byte values of a one-dimensional uuid[] without NULLs in PostgreSQL's binary format (header: ndim,
    has-nulls flag, element type, then length and lower bound per dimension; each element: its length, 16, and
    its bytes), concatenated: what uuid_send gives for each, in the array's order. No Python object per id."""
    dimensions = int.from_bytes(data[0:4], "big")
    if dimensions == 0:
        return b""  # an empty array
    count = int.from_bytes(data[12:16], "big")
    body = memoryview(data)[20:]
    if dimensions != 1 or data[4:8] != b"\0\0\0\0" or len(body) != 20 * count:
        raise ValueError("not a one-dimensional uuid[] without NULLs")
    words = body.cast("I")  # 32-bit words, copied as they are (their byte order does not matter here)
    if words[0::5].tobytes() != b"\0\0\0\x10" * count:
        raise ValueError("a uuid[] element is not 16 bytes long")
    out = bytearray(16 * count)
    view = memoryview(out).cast("I")
    for k in range(4):  # element i's bytes are words 5i+1 … 5i+4
        view[k::4] = words[k + 1 :: 5]
    return bytes(out)


class _IdsBytesLoader(psycopg.adapt.Loader):
    """Loads a binary uuid[] as its ids' bytes (_ids_bytes) instead of a list of UUID objects."""

    format = psycopg.pq.Format.BINARY

    def load(self, data: Any) -> bytes:
        return _ids_bytes(bytes(data))


class _BatchStatement:
    """The batch statement of a job, built once per run; the cursor is a parameter.

    A batch: the next `limit` memories of the scope after the cursor (held rows included, so a batch stays bounded
    and the cursor moves past them), one index range scan on (entity, id) per value of the entity column (merged
    when there are several), each stopping after `limit` rows: the cost of a batch does not depend on the store's
    size. The entity indexes carry legal_hold_id and has_history (INCLUDE), so the selection reads only the index
    where the visibility map allows. The server-side function memories_delete_batch_record (migrations 0008, 0010)
    then deletes the history rows of those that have any and records the selected unheld ids, ascending, as one
    tombstone row (the memories' content-free DELETE events), which the statement also returns as the binary uuid[]
    it built, read as their 16-byte values (_ids_bytes: for the job's running digest, no Python object per id); and
    in the same statement and snapshot, one DELETE removes the scope's unheld rows with ids between the cursor and
    the selection's last id. The fast statement runs only in a REPEATABLE READ transaction: there, that DELETE
    removes exactly the selected unheld rows, or fails with a serialization error when one of them was updated, held
    or deleted by a transaction that committed after the snapshot (also after the DELETE waited for its lock). No
    RETURNING is needed to know what it deleted: it reads each deleted row once, like a bare DELETE. On that error
    the job's transaction rolls back, and its batch is redone by the careful statement in READ COMMITTED
    (fallback_sql: delete by address, else by id with RETURNING, migration 0005), as is any batch of a run that does
    not own its transactions.

    The fast statement is prepared on the connection (psycopg's server-side prepared statement, kept per connection
    and scope shape) and run with a generic plan (the run sets plan_cache_mode for its session): planned once
    instead of once per batch (a custom plan costs 2–6 ms and more, as the planner probes the ends of the entity
    index, where a job leaves its deleted rows' entries), and its only sensible plan is the (entity, id) index
    range anyway."""

    def __init__(self, scope: dict[str, Any], limit: int, end: uuid.UUID | None = None) -> None:
        parts, order = _scope_parts(scope, _CURSOR)
        if end is not None:  # a lane: its range ends there
            parts = [qs.filter(id__lte=end) for qs in parts]
        select_sql, select_params = self._selection(parts, order, limit, addresses=False)
        fallback_select_sql, fallback_select_params = self._selection(parts, order, limit, addresses=True)
        assert scope, "a job's scope is never empty (validate_scope)"
        scope_qs = Memory.objects.filter(scope_q(scope))
        where_sql, where_params = scope_qs.query.get_compiler(connection=connection).compile(
            scope_qs.query.where
        )
        # The selection's ids arrive ascending; ORDER BY makes it a guarantee (a check on sorted input).
        self.sql = f"""
            WITH s AS ({select_sql}),
            a AS MATERIALIZED (
                SELECT count(*) AS selected,
                       array_agg(s.id ORDER BY s.id) FILTER (WHERE s.free) AS ids,
                       array_agg(s.id) FILTER (WHERE s.free AND s.has_history) AS history,
                       array_agg(s.id ORDER BY s.id) FILTER (WHERE NOT s.free) AS held
                FROM s
            ),
            b AS MATERIALIZED (
                SELECT greatest(a.ids[cardinality(a.ids)], a.held[cardinality(a.held)]) AS last FROM a
            ),
            d AS (
                DELETE FROM {_MEMORY} WHERE ({where_sql}) AND {_MEMORY}.id > %s
                    AND {_MEMORY}.id <= (SELECT b.last FROM b) AND {_MEMORY}.legal_hold_id IS NULL
            )
            SELECT a.selected, b.last, r.deleted, r.history_purged, a.ids,
                   set_config('synchronous_commit', 'off', true)
            FROM a, b, LATERAL memories_delete_batch_record(%s, %s, a.ids, a.history, false) AS r
        """
        self.params = [*select_params, *where_params, _CURSOR]
        self.fallback_sql = f"""
            SELECT a.selected, greatest(a.ids[cardinality(a.ids)], a.held[cardinality(a.held)]),
                   b.deleted, b.history_purged, b.packed, CASE WHEN %s THEN b.ids END,
                   set_config('synchronous_commit', 'off', true)
            FROM (
                SELECT count(*) AS selected,
                       array_agg(s.tid) FILTER (WHERE s.free) AS tids,
                       array_agg(s.id ORDER BY s.id) FILTER (WHERE s.free) AS ids,
                       array_agg(s.id) FILTER (WHERE s.free AND s.has_history) AS history,
                       array_agg(s.id ORDER BY s.id) FILTER (WHERE NOT s.free) AS held
                FROM ({fallback_select_sql}) AS s
            ) AS a,
            LATERAL memories_delete_batch(%s, %s, a.tids, a.ids, a.history) AS b
        """
        self.fallback_params = fallback_select_params
        self.limit = limit
        # The next batch runs the careful statement (set after a serialization failure); how many did.
        self.careful = False
        self.fallbacks = 0

    @staticmethod
    def _selection(
        parts: list[QuerySet[Memory]], order: tuple[str, ...], limit: int, *, addresses: bool
    ) -> tuple[str, list[Any]]:
        """The next `limit` rows of the scope after the cursor, ascending: id, free (not held), has_history, and
        with `addresses` their physical address (which an index-only scan cannot return)."""
        columns = {"free": RawSQL(f"{_MEMORY}.legal_hold_id IS NULL", ())}
        if addresses:
            columns["tid"] = RawSQL(f"{_MEMORY}.ctid", ())
        selections = [
            qs.order_by(*order)
            .annotate(**columns)
            .values("id", *columns, "has_history")[:limit]
            .query.sql_with_params()
            for qs in parts
        ]
        if len(selections) == 1:
            return selections[0][0], list(selections[0][1])
        union = " UNION ALL ".join(f"({sql})" for sql, _ in selections)
        return (
            f"SELECT * FROM ({union}) AS merged ORDER BY id LIMIT %s",
            [p for _, params in selections for p in params] + [limit],
        )

    def run(self, job: DeletionJob, *, want_ids: bool, repeatable_read: bool) -> BatchResult:
        """One batch, inside the caller's transaction; the fast statement when the transaction is REPEATABLE READ
        (and the last batch did not fail), else the careful one. When the fast statement's rows changed, it raises a
        DatabaseError for which rows_changed() is true: the caller rolls its transaction back and redoes it in READ
        COMMITTED, `careful` set."""
        assert connection.in_atomic_block, "a batch runs inside its job's transaction"
        cursor = job.cursor or _NIL
        if self.careful or not repeatable_read:
            self.careful = False
            self.fallbacks += 1
            params = [
                want_ids,
                *(cursor if p == _CURSOR else p for p in self.fallback_params),
                job.id,
                job.batches + 1,
            ]
            with connection.cursor() as cur:
                cur.execute(self.fallback_sql, params)
                row = cur.fetchone()
        else:
            params = [*(cursor if p == _CURSOR else p for p in self.params), job.id, job.batches + 1]
            # a cursor that binds on the server: the statement is prepared once per connection and scope shape
            with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cur:
                cur.adapters.register_loader(_UUID_ARRAY_OID, _IdsBytesLoader)
                cur.execute(self.sql, params, prepare=True, binary=True)
                row = cur.fetchone()
            assert row is not None
            selected, last, count, history_purged, packed, _ = row
            packed = packed or b""  # the selected unheld ids, which the statement deleted
            ids = [uuid.UUID(bytes=packed[i : i + 16]) for i in range(0, len(packed), 16)] if want_ids else []
            bound = last if selected == self.limit else None
            return BatchResult(count, history_purged, bound, ids, packed)
        assert row is not None
        selected, last, count, history_purged, packed, ids, _ = row
        bound = last if selected == self.limit else None
        return BatchResult(count, history_purged, bound, list(ids or []), bytes(packed or b""))

    @staticmethod
    def rows_changed(exc: DatabaseError) -> bool:
        """Whether the error is a serialization failure: a row the REPEATABLE READ transaction wanted to change
        (a memory of the batch, or any other row it writes) was changed by a transaction that committed after its
        snapshot. Redone in READ COMMITTED, the transaction sees and handles the change."""
        return getattr(exc.__cause__, "sqlstate", None) == "40001"


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
        # dispatched at once: the first ticket (deletion_job_enqueue's increment, in the same INSERT)
        attempts=1 if enqueue else 0,
        heartbeat_at=timezone.now() if enqueue else None,
    )
    if enqueue:
        _send_on_commit(job.id, job.attempts)
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


class _RunningDigest:
    """ids_digest of a job, fed batch by batch in this process. Valid only while it has seen every batch of the
    job (the run started the job) and the ids arrived in ascending order (no straggler behind the cursor);
    otherwise the job's digest is computed from its tombstones."""

    def __init__(self, *, complete: bool) -> None:
        self.hash = hashlib.sha256()
        self.valid = complete
        self.last = b""

    def copy(self) -> "_RunningDigest":
        other = _RunningDigest(complete=self.valid)
        other.hash, other.last = self.hash.copy(), self.last
        return other

    def feed(self, packed: bytes) -> None:
        if not packed or not self.valid:
            return
        if packed[:16] <= self.last:
            self.valid = False
            return
        self.hash.update(packed)
        self.last = packed[-16:]

    def digest(self, job: DeletionJob) -> str:
        if not job.deleted_count:
            return EMPTY_DIGEST
        if self.valid:
            return self.hash.hexdigest()
        return jobs_ids_digest(job_ids=[job.id, *job.lanes.values_list("id", flat=True)])


def _finish(
    job: DeletionJob,
    *,
    status: str,
    error: str = "",
    digest: "_RunningDigest | None" = None,
    also: list[str] | None = None,
) -> None:
    """Ends the job in one UPDATE, with the fields named in `also` that the caller changed too."""
    if status == DeletionJob.Status.SUCCEEDED:
        if job.scope and job.parent_id is None:  # a lane's held rows are counted by its parent
            job.held_count = Memory.objects.filter(scope_q(job.scope), legal_hold__isnull=False).count()
        job.digest = (digest or _RunningDigest(complete=False)).digest(job)
    job.status = status
    job.error = error
    job.finished_at = timezone.now()
    job.heartbeat_at = job.finished_at
    job.scope = None  # the clear scope goes; scope_pseudonymised stays
    fields = [
        "status",
        "error",
        "finished_at",
        "heartbeat_at",
        "scope",
        "held_count",
        "digest",
        *(also or []),
    ]
    job.save(update_fields=list(dict.fromkeys(fields)))
    # Inside the job's final transaction: a subscriber's state change commits (or rolls back) with it.
    deletion_job_finished.send(sender=DeletionJob, job=job)


def _straggler_cursor(job: DeletionJob) -> uuid.UUID:
    """Where a straggler pass starts: just below any id generated since the job started, less the margin."""
    started = job.started_at or job.created_at
    return uuid7_floor(started - datetime.timedelta(seconds=settings.DELETION_STRAGGLER_MARGIN_SECONDS))


def _lanes_create(job: DeletionJob, limit: int) -> bool:
    """When the job's scope holds more than one batch, splits its first pass into DELETION_LANES child jobs over
    consecutive id ranges of equal width between the scope's first and last ids (for time-ordered ids: equal spans
    of time). Returns whether it did. In the job's transaction, so the lanes exist exactly when the job's first
    transaction committed."""
    assert job.scope is not None
    parts, order = _scope_parts(job.scope, _NIL)
    if order == ("id",):  # lanes need the (entity, id) index to find their ranges' rows
        return False
    # One query: per value of the entity column, whether it holds more than a batch, its first and its last id.
    subqueries = []
    for qs in parts:
        ordered = qs.order_by(*order).values("id")
        backwards = qs.order_by(*(f"-{name}" for name in order)).values("id")
        subqueries += [ordered[limit : limit + 1], ordered[:1], backwards[:1]]
    compiled = [q.query.sql_with_params() for q in subqueries]
    with connection.cursor() as cur:
        cur.execute(
            "SELECT " + ", ".join(f"({sql})" for sql, _ in compiled),
            [p for _, params in compiled for p in params],
        )
        row = cur.fetchone()
    probes, firsts, lasts = row[0::3], [v for v in row[1::3] if v], [v for v in row[2::3] if v]
    if not any(probes) or not firsts:
        return False
    first, last = min(firsts), max(lasts)
    count = settings.DELETION_LANES
    if last.int - first.int < count:
        return False
    bounds = [first.int + (last.int - first.int) * i // count for i in range(1, count)]
    DeletionJob.objects.bulk_create(
        DeletionJob(
            kind=job.kind,
            scope=job.scope,
            scope_pseudonymised=job.scope_pseudonymised,
            requested_by=job.requested_by,
            parent=job,
            cursor=uuid.UUID(int=start),
            cursor_end=uuid.UUID(int=end) if end is not None else None,
        )
        for start, end in zip([0, *bounds], [*bounds, None], strict=True)
    )
    return True


_lane_pool: ThreadPoolExecutor | None = None
_lane_pool_lock = threading.Lock()
_settle: Future[None] | None = None  # the latest _scope_settle submitted (tests wait for it)


def _lane_run(lane_id: uuid.UUID, budget: float, limit: int) -> RunResult:
    """One lane, in a thread of the pool, on that thread's own database connection: kept for the next job's lanes
    (a new session's first batch costs ~20 ms more: connection, catalog caches, the function's compilation) as
    Django keeps any connection, up to CONN_MAX_AGE."""
    try:
        return deletion_job_run(job_id=lane_id, budget_seconds=budget, batch_size=limit, collect_packed=True)
    finally:
        connection.close_if_unusable_or_obsolete()


def _scope_settle(scope: dict[str, Any]) -> None:
    """Reads the scope's (entity, id) index entries once, from the end backwards, in a lane thread, after the job's
    lanes have deleted their ranges and while the job itself finishes.

    The first read of a deleted row's index entry after the delete must visit the row in the heap to learn that it is
    gone; it sets the row's hint bits there and, as no transaction can still see the row, marks the entry dead, so
    that later reads pass it without visiting the heap. Left alone, that work (~25 ms per 100,000 deleted rows on a
    2-core machine) falls on the first reader of the scope: for an erasure request, the count of its verification,
    which comes right after the job. Done here, side by side with the job's last transactions, the verification
    (which still counts every row of the scope itself) meets entries already marked dead; and it reads forwards, so
    if it starts before this read ends, the two meet instead of repeating each other's work. Nothing depends on this
    read: an error is logged (class name) and dropped."""
    try:
        parts, order = _scope_parts(scope, _NIL)
        with transaction.atomic(), index_scans_only(), connection.cursor() as cur:
            cur.execute("SET LOCAL enable_bitmapscan = off")  # a bitmap scan would not mark the entries
            for qs in parts:
                sql, params = (
                    qs.order_by(*(f"-{name}" for name in order)).values("id").query.sql_with_params()
                )
                cur.execute(f"SELECT count(*) FROM ({sql}) AS entries", params)
    except DatabaseError as exc:
        logger.warning("reading a deleted scope's index entries failed", extra={"error": type(exc).__name__})
    finally:
        connection.close_if_unusable_or_obsolete()


def _lanes_run(
    job_id: uuid.UUID, *, budget: float, limit: int, digest: "_RunningDigest", scope: dict[str, Any]
) -> bool:
    """Runs the job's unfinished lanes side by side until they finish or the budget is spent; True when every lane
    has finished. Feeds the lanes' ids to the job's running digest when each lane ran whole in this call. When all
    have finished, a lane thread reads the scope's index entries once (_scope_settle) while the job goes on."""
    global _lane_pool, _settle
    with _lane_pool_lock:
        if _lane_pool is None:
            _lane_pool = ThreadPoolExecutor(max_workers=settings.DELETION_LANES, thread_name_prefix="lane")
    lanes = list(DeletionJob.objects.filter(parent_id=job_id).order_by(F("cursor_end").asc(nulls_last=True)))
    futures = {
        lane.id: _lane_pool.submit(_lane_run, lane.id, budget, limit)
        for lane in lanes
        if not lane.is_finished
    }
    wait(futures.values())  # every lane stops before an error of one is raised
    results = {lane_id: future.result() for lane_id, future in futures.items()}
    for lane in lanes:
        result = results.get(lane.id)
        if result is not None and result.whole and result.finished:
            digest.feed(result.packed)
        else:
            digest.valid = False
    finished = all(result.finished for result in results.values())
    if finished and results:
        _settle = _lane_pool.submit(_scope_settle, scope)
    return finished


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
    split into DELETION_LANES child jobs over consecutive id ranges (_lanes_create), run side by side in
    threads, each with the same batches, progress records and tombstones as any job; when all have finished,
    their counts are added to the job's and the job goes on with its straggler pass. A resumed run resumes the
    unfinished lanes.

    Side effects per batch (one transaction): memories deleted; their history rows deleted; one MemoryTombstone
    (the batch's DELETE events); the job's counters/cursor/heartbeat updated. On completion the job becomes
    SUCCEEDED with its held count and digest, its clear scope is dropped and `deletion_job_finished` is sent
    inside that transaction.
    """
    job_id = uuid.UUID(str(job_id))
    budget = settings.DELETION_TASK_BUDGET_SECONDS if budget_seconds is None else budget_seconds
    limit = batch_size or settings.DELETION_BATCH_SIZE
    own_transactions = not connection.in_atomic_block  # else each "transaction" below is a savepoint
    lanes_allowed = settings.DELETION_LANES > 1 and not collect_ids and own_transactions
    key = _lock_key(job_id)
    with connection.cursor() as cur:
        # With the lock, the run's session plans prepared statements generically (the batch statement's; see
        # _BatchStatement), until the finally clause below puts the previous setting back. Not when prepared
        # statements are off (DATABASE_PREPARED_STATEMENTS=0, behind a pooler that shares sessions).
        prepared = connection.connection.prepare_threshold is not None
        cur.execute(
            "SELECT l.locked, l.previous,"
            " CASE WHEN l.locked AND %s THEN set_config('plan_cache_mode', 'force_generic_plan', false) END"
            " FROM (SELECT pg_try_advisory_lock(%s) AS locked, current_setting('plan_cache_mode') AS previous) l",
            [prepared, key],
        )
        locked, previous_plan_cache_mode, _ = cur.fetchone()
    if not locked:  # the same ticket is being worked on right now; that run continues the chain
        return RunResult(job=DeletionJob.objects.get(id=job_id), finished=False, ran=False)
    previous_isolation = connection.connection.isolation_level
    collected: list[uuid.UUID] = []
    packed: list[bytes] = []
    started = time.monotonic()
    statement: _BatchStatement | None = None
    digest = _RunningDigest(complete=False)
    whole = False
    first = True
    fetch = True  # read and lock the job row in the next transaction (the first, and the one after lanes ran)
    lanes = ""  # "" none; "open": the next loop turn runs them; "done": finished, straggler pass next
    scope: dict[str, Any] | None = None  # the job's scope, once read
    try:
        while True:
            if lanes == "open":
                remaining = max(budget - (time.monotonic() - started), 0.0)
                assert scope is not None
                if not _lanes_run(job_id, budget=remaining, limit=limit, digest=digest, scope=scope):
                    with transaction.atomic():
                        job = DeletionJob.objects.select_for_update().get(id=job_id)
                        job.heartbeat_at = timezone.now()
                        fields = ["heartbeat_at"]
                        if ticket is not None and job.attempts == ticket and not job.is_finished:
                            job.attempts += 1  # the continuation's ticket
                            fields.append("attempts")
                            _send_on_commit(job.id, job.attempts)
                        job.save(update_fields=fields)
                    return RunResult(job=job, finished=False)
                lanes = "done"
                fetch = True
            # If the batch's rows change under its fast statement, the transaction rolls back and is redone from
            # this state, its batch by the careful statement.
            before_transaction = (first, lanes, whole, digest.copy(), len(collected), len(packed))
            if own_transactions:
                # REPEATABLE READ for the fast batch statement; READ COMMITTED to redo a transaction that failed
                # on a row changed after its snapshot (see _BatchStatement)
                careful = statement is not None and statement.careful
                connection.connection.isolation_level = (
                    psycopg.IsolationLevel.READ_COMMITTED
                    if careful
                    else psycopg.IsolationLevel.REPEATABLE_READ
                )
            try:
                finished = out_of_time = False
                with transaction.atomic():
                    if fetch:
                        job = DeletionJob.objects.select_for_update().get(id=job_id)
                        scope = job.scope
                        # Afterwards this run's copy is the job's state: no other writer changes the row while the
                        # run holds the job's advisory lock (the sweeper only touches a stale heartbeat).
                        fetch = False
                    fields = [
                        "cursor",
                        "deleted_count",
                        "history_purged_count",
                        "batches",
                        "heartbeat_at",
                        "passes",
                        "pass_deleted_count",
                    ]
                    if first:
                        if job.is_finished:
                            return RunResult(job=job, finished=True, ran=False)
                        if ticket is not None and job.attempts != ticket:  # superseded by a newer dispatch
                            return RunResult(job=job, finished=False, ran=False)
                        job.status = DeletionJob.Status.RUNNING
                        started_before = job.started_at is not None  # only then can it have lanes already
                        job.started_at = job.started_at or timezone.now()
                        fields += ["status", "started_at"]
                        whole = job.deleted_count == 0
                        digest = _RunningDigest(complete=whole)
                        first = False
                        if job.parent_id is None and job.passes == 0:
                            if started_before and job.lanes.exists():
                                lanes = "open"  # a run before this one handed its first pass to lanes
                            elif lanes_allowed and job.cursor is None and _lanes_create(job, limit):
                                lanes = "open"
                            if lanes:
                                job.save(update_fields=fields)
                                continue
                    elif job.is_finished:
                        return RunResult(job=job, finished=True, deleted_ids=collected)
                    assert job.scope is not None
                    if lanes == "done":
                        # The first pass is over: the lanes' counts become the job's, once (passes goes 0 → 1 in
                        # the same transaction), and the straggler pass follows.
                        totals = job.lanes.aggregate(
                            deleted=Sum("deleted_count"),
                            history=Sum("history_purged_count"),
                            batches=Sum("batches"),
                        )
                        job.deleted_count += totals["deleted"] or 0
                        job.history_purged_count += totals["history"] or 0
                        job.batches += totals["batches"] or 0
                        job.cursor = _straggler_cursor(job)
                        job.passes += 1
                        job.pass_deleted_count = 0
                        lanes = ""
                    if statement is None:
                        statement = _BatchStatement(job.scope, limit, end=job.cursor_end)
                    finished = False
                    # One batch per transaction; a pass that ends in it is followed by its straggler batch at once,
                    # so a small job needs one transaction for its batches (and one to end).
                    for _ in range(2):
                        batch = statement.run(job, want_ids=collect_ids, repeatable_read=own_transactions)
                        digest.feed(batch.packed)
                        if collect_ids:
                            collected.extend(batch.deleted)
                        if collect_packed:
                            packed.append(batch.packed)
                        job.deleted_count += batch.deleted_count
                        job.history_purged_count += batch.history_purged
                        job.batches += 1 if batch.deleted_count else 0
                        job.pass_deleted_count += batch.deleted_count
                        if batch.bound is not None:
                            job.cursor = batch.bound
                            break
                        if (
                            "memory_ids" in job.scope
                            or job.parent_id is not None
                            or (job.passes > 0 and job.pass_deleted_count == 0)
                        ):
                            # Named ids cannot be written behind the cursor; a lane's range ends with its first pass
                            # (its parent makes the straggler pass); otherwise a straggler pass found nothing.
                            finished = True
                            break
                        # End of a pass: one more, over the ids that can have been written since the job started.
                        job.cursor = _straggler_cursor(job)
                        job.passes += 1
                        job.pass_deleted_count = 0
                    job.heartbeat_at = timezone.now()
                    out_of_time = False
                    if finished:
                        job.save(update_fields=fields)  # the job ends in a transaction of its own, below
                    else:
                        out_of_time = time.monotonic() - started >= budget
                        if out_of_time and ticket is not None:
                            job.attempts += 1  # the continuation's ticket, committed with this batch
                            fields.append("attempts")
                            _send_on_commit(job.id, job.attempts)
                        job.save(update_fields=fields)
            except DatabaseError as exc:
                if statement is None or not _BatchStatement.rows_changed(exc):
                    raise
                logger.info(
                    "batch redone by the careful statement: rows changed under it", extra={"job": str(job_id)}
                )
                first, lanes, whole, digest, kept_ids, kept_packed = before_transaction
                del collected[kept_ids:], packed[kept_packed:]
                statement.careful = True
                fetch = True
                continue
            if finished:
                # The job's end, in a READ COMMITTED transaction of its own: its receivers (an erasure request's move
                # to `deleted`, audit entries chained onto the latest one) must read what other transactions have
                # committed, not a snapshot taken before they took their locks. If the process dies just before
                # it, the job's next run makes one more (empty) straggler batch and ends then. The batch statement
                # turned synchronous_commit off for the batches' transactions (after a crash a batch and its
                # progress record roll back together, and the job redoes them); this one, which says SUCCEEDED,
                # commits synchronously, and its flush covers every commit written before it.
                if own_transactions:
                    connection.connection.isolation_level = psycopg.IsolationLevel.READ_COMMITTED
                with transaction.atomic():
                    with connection.cursor() as cur:
                        cur.execute("SET LOCAL synchronous_commit = on")
                    _finish(job, status=DeletionJob.Status.SUCCEEDED, digest=digest, also=fields)
                logger.info(
                    "deletion job finished",
                    extra={"job": str(job.id), "deleted": job.deleted_count, "held": job.held_count},
                )
            if finished or out_of_time:
                return RunResult(
                    job=job,
                    finished=finished,
                    deleted_ids=collected,
                    packed=b"".join(packed),
                    whole=whole,
                )
    finally:
        if connection.is_usable():
            with connection.cursor() as cur:
                cur.execute(
                    "SELECT pg_advisory_unlock(%s),"
                    " CASE WHEN %s THEN set_config('plan_cache_mode', %s, false) END",
                    [key, prepared, previous_plan_cache_mode],
                )
            if own_transactions:
                connection.connection.isolation_level = previous_isolation


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
            .filter(status__in=[DeletionJob.Status.PENDING, DeletionJob.Status.RUNNING], parent__isnull=True)
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
    """How many history rows still hold text for the memories that these jobs deleted (0 after a correct run: the
    batch statement deleted them). Looks up the memories that had history rows when they were deleted (each
    tombstone's history_ids; all its ids for tombstones written before those were recorded): a history row for
    any other deleted memory cannot exist, as none can be written for a memory that is gone (the history trigger,
    migration 0007) and writing one flags its memory. One query, each id looked up through history_memory_id_idx."""
    if not job_ids:
        return 0
    with connection.cursor() as cur:
        cur.execute(
            # = ANY(ARRAY(…)): an index scan with the ids as one array, never a hash join over the whole table
            f"""SELECT count(*) FROM {_HISTORY} h WHERE h.memory_id = ANY(ARRAY(
                    SELECT unnest(coalesce(t.history_ids, t.ids)) FROM {_TOMBSTONE} t WHERE t.job_id = ANY(%s)))
                AND (h.old_memory IS NOT NULL OR h.new_memory IS NOT NULL)""",
            [list(job_ids)],
        )
        (count,) = cur.fetchone()
    return int(count)


@contextlib.contextmanager
def index_scans_only() -> Iterator[None]:
    """Inside a transaction: the queries in the block read through indexes, not whole tables. Right after a large
    delete the planner's statistics still count the deleted rows as live (until autovacuum's next ANALYZE), so a
    count of a subject's memories that finds nothing would be planned as a scan of the whole table, a cost that
    grows with the store; through the (entity, id) index it only passes the deleted rows' entries."""
    assert connection.in_atomic_block, "SET LOCAL needs a transaction"
    with connection.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")
    try:
        yield
    finally:
        if connection.is_usable() and not connection.needs_rollback:
            with connection.cursor() as cur:
                cur.execute("SET LOCAL enable_seqscan = on")


def memories_delete_now(*, kind: str, scope: dict[str, Any], requested_by: str) -> RunResult:
    """Synchronous use of the engine for request-sized scopes (one memory, a batch of ≤1000 ids): creates the
    job and runs it to the end in this process. Returns the deleted ids."""
    job = deletion_job_create(kind=kind, scope=scope, requested_by=requested_by, enqueue=False)
    result = deletion_job_run(job_id=job.id, budget_seconds=float("inf"), collect_ids=True)
    return result


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
