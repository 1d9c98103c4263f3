"""Lanes: a job whose scope holds more than one batch runs its first pass as child jobs over consecutive id ranges,
side by side in threads of the worker (each on its own connection), each with its own progress record. Lanes carry
no tickets and are never swept on their own: the job's next run resumes them."""

import logging
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from threading import Lock
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F

from ..models import DeletionJob
from .digests import RunningDigest
from .keyset import NIL, scope_parts
from .reads import index_scans_only

if TYPE_CHECKING:
    from .run import RunResult

logger = logging.getLogger(__name__)

LaneRunner = Callable[..., "RunResult"]  # deletion_job_run, passed in by the run (which imports this module)

_pool: ThreadPoolExecutor | None = None
_pool_lock = Lock()
_settle: Future[None] | None = None  # the latest scope_settle submitted


def lanes_create(job: DeletionJob, limit: int) -> bool:
    """When the job's scope holds more than one batch, splits its first pass into DELETION_LANES child jobs over
    consecutive id ranges of equal width between the scope's first and last ids (for time-ordered ids: equal spans
    of time). Returns whether it did. In the job's transaction, so the lanes exist exactly when the job's first
    transaction committed."""
    assert job.scope is not None
    parts, order = scope_parts(job.scope, NIL)
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


def _lane_run(run_lane: LaneRunner, lane_id: uuid.UUID, budget: float, limit: int) -> "RunResult":
    """One lane, in a thread of the pool, on that thread's own database connection: kept for the next job's lanes
    (a new session's first batch pays for its connection, catalog caches and the function's compilation) as Django
    keeps any connection, up to CONN_MAX_AGE."""
    try:
        return run_lane(job_id=lane_id, budget_seconds=budget, batch_size=limit, collect_packed=True)
    finally:
        connection.close_if_unusable_or_obsolete()


def scope_settle(scope: dict[str, Any]) -> None:
    """Reads the scope's (entity, id) index entries once, from the end backwards, in a lane thread, after the job's
    lanes have deleted their ranges and while the job itself finishes.

    The first read of a deleted row's index entry after the delete must visit the row in the heap to learn that it is
    gone; it sets the row's hint bits there and, as no transaction can still see the row, marks the entry dead, so
    that later reads pass it without visiting the heap. Left alone, that work falls on the first reader of the
    scope: for an erasure request, the count of its verification, which comes right after the job. Done here, side
    by side with the job's last transactions, the verification (which still counts every row of the scope itself)
    meets entries already marked dead; and it reads forwards, so if it starts before this read ends, the two meet
    instead of repeating each other's work. Nothing depends on this read: an error is logged (class name) and
    dropped."""
    try:
        parts, order = scope_parts(scope, NIL)
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


def scope_settle_wait(timeout: float) -> bool:
    """Waits for the latest scope_settle to end; whether there was one."""
    if _settle is None:
        return False
    _settle.result(timeout=timeout)
    return True


def lanes_run(
    job_id: uuid.UUID,
    *,
    budget: float,
    limit: int,
    digest: RunningDigest,
    scope: dict[str, Any],
    run_lane: LaneRunner,
) -> bool:
    """Runs the job's unfinished lanes side by side (each through run_lane) until they finish or the budget is
    spent; True when every lane has finished. Feeds the lanes' ids to the job's running digest when each lane ran
    whole in this call. When all have finished, a lane thread reads the scope's index entries once (scope_settle)
    while the job goes on."""
    global _pool, _settle
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=settings.DELETION_LANES, thread_name_prefix="lane")
    lanes = list(DeletionJob.objects.filter(parent_id=job_id).order_by(F("cursor_end").asc(nulls_last=True)))
    futures = {
        lane.id: _pool.submit(_lane_run, run_lane, lane.id, budget, limit)
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
        _settle = _pool.submit(scope_settle, scope)
    return finished
