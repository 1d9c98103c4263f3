"""The batch statement: one SQL statement per batch that selects the next memories of the scope after the cursor and
deletes them with their history, recording them as one tombstone. Fast (REPEATABLE READ, no RETURNING) and careful
(READ COMMITTED, by address then by id) forms; the SQL functions it calls are in sql/ (memories_delete_batch*.sql)."""

import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from django.db import DatabaseError, connection
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL

from ..holds import held_q, hold_scopes_for
from ..models import DeletionJob, Memory
from ..scope import scope_q
from .keyset import CURSOR, MEMORY_TABLE, NIL, scope_parts


@dataclass
class BatchResult:
    deleted_count: int
    history_purged: int
    bound: uuid.UUID | None  # the batch's upper bound; None when the batch reached the end of the scope
    deleted: list[uuid.UUID]  # ascending; only when asked for (no Python object per id otherwise)
    packed: bytes  # the deleted ids ascending, 16 bytes each (uuid_send), for the running digest


UUID_ARRAY_OID = 2951


def ids_bytes(data: bytes) -> bytes:
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


class IdsBytesLoader(psycopg.adapt.Loader):
    """Loads a binary uuid[] as its ids' bytes (ids_bytes) instead of a list of UUID objects."""

    format = psycopg.pq.Format.BINARY

    def load(self, data: Any) -> bytes:
        return ids_bytes(bytes(data))


class BatchStatement:
    """The batch statement of a job, built once per run; the cursor is a parameter.

    A batch: the next `limit` memories of the scope after the cursor (held rows included, so a batch stays bounded
    and the cursor moves past them), one index range scan on (entity, id) per value of the entity column (merged
    when there are several), each stopping after `limit` rows: the cost of a batch does not depend on the store's
    size. The entity indexes carry legal_hold_id and has_history (INCLUDE), so the selection reads only the index
    where the visibility map allows (held: legal_hold_id set, or matching an active hold relevant to the job, whose
    scopes are read when the statement is built: memories.holds). The server-side function
    memories_delete_batch_record (sql/) then deletes the history rows of those that have any and records the selected unheld ids, ascending, as one
    tombstone row (the memories' content-free DELETE events), which the statement also returns as the binary uuid[]
    it built, read as their 16-byte values (ids_bytes: for the job's running digest, no Python object per id); and
    in the same statement and snapshot, one DELETE removes the scope's unheld rows with ids between the cursor and
    the selection's last id. The fast statement runs only in a REPEATABLE READ transaction: there, that DELETE
    removes exactly the selected unheld rows, or fails with a serialization error when one of them was updated, held
    or deleted by a transaction that committed after the snapshot (also after the DELETE waited for its lock). No
    RETURNING is needed to know what it deleted: it reads each deleted row once, like a bare DELETE. On that error
    the job's transaction rolls back, and its batch is redone by the careful statement in READ COMMITTED
    (fallback_sql: delete by address, else by id with RETURNING: memories_delete_batch, sql/), as is any batch of a
    run that does not own its transactions.

    The fast statement is prepared on the connection (psycopg's server-side prepared statement, kept per connection
    and scope shape) and run with a generic plan (the run sets plan_cache_mode for its session): planned once
    instead of once per batch (a custom plan probes the ends of the entity index, where a job leaves its deleted
    rows' entries), and its only sensible plan is the (entity, id) index
    range anyway."""

    def __init__(self, scope: dict[str, Any], limit: int, end: uuid.UUID | None = None) -> None:
        parts, order = scope_parts(scope, CURSOR)
        if end is not None:  # a lane: its range ends there
            parts = [qs.filter(id__lte=end) for qs in parts]
        free_sql, free_params = self._free(hold_scopes_for(scope))
        select_sql, select_params = self._selection(
            parts, order, limit, free_sql, free_params, addresses=False
        )
        fallback_select_sql, fallback_select_params = self._selection(
            parts, order, limit, free_sql, free_params, addresses=True
        )
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
                DELETE FROM {MEMORY_TABLE} WHERE ({where_sql}) AND {MEMORY_TABLE}.id > %s
                    AND {MEMORY_TABLE}.id <= (SELECT b.last FROM b) AND {free_sql}
            )
            SELECT a.selected, b.last, r.deleted, r.history_purged, a.ids,
                   set_config('synchronous_commit', 'off', true)
            FROM a, b, LATERAL memories_delete_batch_record(%s, %s, a.ids, a.history, false) AS r
        """
        self.params = [*select_params, *where_params, CURSOR, *free_params]
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
    def _free(hold_scopes: list[dict[str, Any]]) -> tuple[str, list[Any]]:
        """The condition a row must meet to be deleted: not held (memories.holds). Without an active hold relevant
        to the job it reads only legal_hold_id, which the entity indexes carry; each relevant hold adds its scope
        (holds are few, and a hold on other subjects is not relevant)."""
        if not hold_scopes:
            return f"{MEMORY_TABLE}.legal_hold_id IS NULL", []
        held = Memory.objects.filter(held_q(hold_scopes=hold_scopes))
        sql, params = held.query.get_compiler(connection=connection).compile(held.query.where)
        return f"(({sql}) IS NOT TRUE)", list(params)

    @staticmethod
    def _selection(
        parts: list[QuerySet[Memory]],
        order: tuple[str, ...],
        limit: int,
        free_sql: str,
        free_params: list[Any],
        *,
        addresses: bool,
    ) -> tuple[str, list[Any]]:
        """The next `limit` rows of the scope after the cursor, ascending: id, free (not held), has_history, and
        with `addresses` their physical address (which an index-only scan cannot return)."""
        columns = {"free": RawSQL(free_sql, free_params)}
        if addresses:
            columns["tid"] = RawSQL(f"{MEMORY_TABLE}.ctid", ())
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
        cursor = job.cursor or NIL
        if self.careful or not repeatable_read:
            self.careful = False
            self.fallbacks += 1
            params = [
                want_ids,
                *(cursor if p == CURSOR else p for p in self.fallback_params),
                job.id,
                job.batches + 1,
            ]
            with connection.cursor() as cur:
                cur.execute(self.fallback_sql, params)
                row = cur.fetchone()
        else:
            params = [*(cursor if p == CURSOR else p for p in self.params), job.id, job.batches + 1]
            # a cursor that binds on the server: the statement is prepared once per connection and scope shape
            with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cur:
                cur.adapters.register_loader(UUID_ARRAY_OID, IdsBytesLoader)
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
