"""Native pgvector path: Mem0's table is `id UUID PK, vector, payload JSONB` (mem0/vector_stores/pgvector.py);
the scope becomes a WHERE on the payload and the subject's rows go in bounded `DELETE … RETURNING` batches."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from ..base import StoreConfigError, StoreUnavailable
from . import matching

Row = tuple[str, dict[str, Any]]


def scope_sql(scope: dict[str, Any]) -> tuple[Any, list[Any]]:
    """The scope as SQL over Mem0's payload (jsonb `@>` for metadata, the same containment as the built-in store)."""
    from psycopg import sql

    parts: list[Any] = []
    params: list[Any] = []
    for key in matching.IDENTITY_KEYS:
        if key in scope:
            value = scope[key]
            if isinstance(value, list):
                parts.append(sql.SQL("payload->>{} = ANY(%s)").format(sql.Literal(key)))
            else:
                parts.append(sql.SQL("payload->>{} = %s").format(sql.Literal(key)))
            params.append(value)
    if "metadata" in scope:
        parts.append(sql.SQL("payload @> %s::jsonb"))
        params.append(json.dumps(scope["metadata"]))
    if "memory_ids" in scope:
        parts.append(sql.SQL("id = ANY(%s::uuid[])"))
        params.append(scope["memory_ids"])
    if "expired_before" in scope:
        parts.append(sql.SQL("left(payload->>'expiration_date', 10) < %s"))
        params.append(scope["expired_before"])
    if not parts:
        return sql.SQL("false"), []
    return sql.SQL("(") + sql.SQL(" AND ").join(parts) + sql.SQL(")"), params


def erasable_sql(scope: dict[str, Any], holds: Sequence[dict[str, Any]]) -> tuple[Any, list[Any]]:
    from psycopg import sql

    where, params = scope_sql(scope)
    for hold in holds:
        cond, hold_params = scope_sql(hold)
        where = where + sql.SQL(" AND NOT COALESCE(") + cond + sql.SQL(", false)")
        params += hold_params
    return where, params


class PgvectorBackend:
    native = "pgvector"

    def __init__(self, config: Any):
        self.config = config  # mem0's validated PGVectorConfig
        self.collection = config.collection_name
        self.entities = f"{self.collection}_entities"
        self.conn: Any = None
        self.in_batch = False  # a DELETE … RETURNING waits to be committed: reads must not commit it

    def conninfo(self) -> str:
        """The same connection Mem0's PGVector class builds."""
        c = self.config
        if c.connection_pool is not None:
            raise StoreConfigError(
                "vector_store.config.connection_pool: give a connection_string instead", "connection_pool"
            )
        if c.connection_string:
            conninfo = c.connection_string
        else:
            conninfo = f"postgresql://{c.user}:{c.password}@{c.host}:{c.port}/{c.dbname}"
        return conninfo

    def open(self) -> None:
        import psycopg

        try:
            extra = {"sslmode": self.config.sslmode} if self.config.sslmode else {}
            self.conn = psycopg.connect(self.conninfo(), connect_timeout=10, **extra)
        except psycopg.OperationalError as exc:
            raise StoreUnavailable("PostgreSQL (pgvector) could not be reached") from exc
        self.conn.execute("SET statement_timeout = '120s'")
        self.conn.commit()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _end_read(self) -> None:
        if not self.in_batch:
            self.conn.commit()

    def _table(self, name: str) -> Any:
        from psycopg import sql

        return sql.Identifier(name)

    def has(self, table: str) -> bool:
        row = self.conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f'"{table}"',)).fetchone()
        self._end_read()
        return bool(row[0])

    def describe(self) -> str:
        from psycopg import sql

        if not self.has(self.collection):
            return f"table '{self.collection}' not found"
        n = self.conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(self._table(self.collection))
        ).fetchone()[0]
        self._end_read()
        return f"pgvector: table '{self.collection}' found, {n} rows"

    def scan(
        self, scope: dict[str, Any], keys: list[str], offset: Any = None, limit: int = 1000
    ) -> Iterator[Row]:
        from psycopg import sql

        if not self.has(self.collection):
            return
        where, params = scope_sql(scope)
        picks = sql.SQL(", ").join(
            sql.SQL("{}, payload->{}").format(sql.Literal(k), sql.Literal(k)) for k in keys
        )
        query = sql.SQL("SELECT id::text, jsonb_build_object({}) FROM {} WHERE {}").format(
            picks, self._table(self.collection), where
        )
        with self.conn.cursor(name="mem0_oss_scan") as cur:
            cur.itersize = limit
            cur.execute(query, params)
            for pid, payload in cur:
                yield pid, {k: v for k, v in payload.items() if v is not None}
        self._end_read()

    def take_batch(
        self, scope: dict[str, Any], holds: list[dict[str, Any]], state: dict[str, Any], size: int
    ) -> list[Row]:
        """Deletes the next `size` erasable rows in an open transaction (`DELETE … RETURNING`), committed by
        `commit_batch` once the ids are recorded as pending: killed in between, the rows simply stay."""
        from psycopg import sql

        if not self.has(self.collection):
            state["exhausted"] = True
            return []
        where, params = erasable_sql(scope, holds)
        table = self._table(self.collection)
        query = sql.SQL(
            "DELETE FROM {t} WHERE id IN (SELECT id FROM {t} WHERE {w} LIMIT %s FOR UPDATE SKIP LOCKED) "
            "RETURNING id::text, jsonb_build_object('user_id', payload->'user_id', 'agent_id', payload->'agent_id', "
            "'run_id', payload->'run_id')"
        ).format(t=table, w=where)
        rows = self.conn.execute(query, [*params, size]).fetchall()
        self.in_batch = True
        state["exhausted"] = len(rows) < size
        return [(pid, {k: v for k, v in payload.items() if v is not None}) for pid, payload in rows]

    def commit_batch(self, ids: Sequence[str]) -> None:
        self.in_batch = False
        self.conn.commit()

    def delete(self, ids: Sequence[str]) -> None:
        from psycopg import sql

        if ids and self.has(self.collection):
            query = sql.SQL("DELETE FROM {} WHERE id = ANY(%s::uuid[])").format(self._table(self.collection))
            self.conn.execute(query, (list(ids),))
            self.conn.commit()

    def existing(self, ids: Sequence[str]) -> set[str]:
        from psycopg import sql

        if not ids or not self.has(self.collection):
            return set()
        query = sql.SQL("SELECT id::text FROM {} WHERE id = ANY(%s::uuid[])").format(
            self._table(self.collection)
        )
        found = {row[0] for row in self.conn.execute(query, (list(ids),))}
        self._end_read()
        return found

    def _entity_rows(self, where: Any, params: list[Any]) -> list[Row]:
        from psycopg import sql

        if not self.has(self.entities):
            return []
        query = sql.SQL(
            "SELECT id::text, jsonb_build_object('user_id', payload->'user_id', 'agent_id', payload->'agent_id', "
            "'run_id', payload->'run_id', 'linked_memory_ids', payload->'linked_memory_ids') FROM {} WHERE {}"
        ).format(self._table(self.entities), where)
        rows = [
            (pid, {k: v for k, v in p.items() if v is not None})
            for pid, p in self.conn.execute(query, params)
        ]
        self._end_read()
        return rows

    def entities_linked(self, ids: Sequence[str], sessions: Sequence[dict[str, str]] = ()) -> list[Row]:
        from psycopg import sql

        if not ids:
            return []
        return self._entity_rows(sql.SQL("payload->'linked_memory_ids' ?| %s::text[]"), [list(ids)])

    def entities_of(self, ids: dict[str, str]) -> list[Row]:
        from psycopg import sql

        return self._entity_rows(sql.SQL("payload @> %s::jsonb"), [json.dumps(ids)])

    def delete_entities(self, ids: Sequence[str]) -> None:
        from psycopg import sql

        if ids and self.has(self.entities):
            query = sql.SQL("DELETE FROM {} WHERE id = ANY(%s::uuid[])").format(self._table(self.entities))
            self.conn.execute(query, (list(ids),))
            self.conn.commit()

    def set_entity_links(self, links: dict[str, list[str]]) -> None:
        """Rewrites the entity rows' linked_memory_ids in one statement."""
        from psycopg import sql

        if not links:
            return
        query = sql.SQL(
            "UPDATE {} AS e SET payload = jsonb_set(e.payload, '{{linked_memory_ids}}', v.linked) "
            "FROM (SELECT unnest(%s::uuid[]) AS id, unnest(%s::jsonb[]) AS linked) AS v WHERE e.id = v.id"
        ).format(self._table(self.entities))
        ids = list(links)
        self.conn.execute(query, (ids, [json.dumps(links[i]) for i in ids]))
        self.conn.commit()

    def vacuum(self) -> None:
        """Dead row versions keep the text in the table's pages until PostgreSQL vacuums it: prune them now. Index
        cleanup is left to autovacuum (it costs seconds on the HNSW index; Mem0's full-text GIN index keeps the
        dead rows' lexemes until then), and PostgreSQL does not zero freed space: a residual window to state."""
        import psycopg
        from psycopg import sql

        self.conn.commit()
        self.conn.autocommit = True
        try:
            # Autovacuum may already be on the table after the deletes: then it does this job, do not queue.
            self.conn.execute("SET lock_timeout = '1s'")
            for table in (self.collection, self.entities):
                if self.has(table):
                    try:
                        self.conn.execute(sql.SQL("VACUUM (INDEX_CLEANUP OFF) {}").format(self._table(table)))
                    except psycopg.errors.LockNotAvailable:
                        pass
        except psycopg.Error:  # vacuum is best effort (permissions); the rows are already gone
            pass
        finally:
            self.conn.execute("RESET lock_timeout")
            self.conn.autocommit = False
