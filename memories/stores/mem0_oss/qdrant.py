"""Native Qdrant path (embedded `path` or a server `url`/`host`): payload-filtered scroll of ids, deletes by id list.

Embedded Qdrant locks its folder to one process: the folder is opened only for the job and closed after; when the
application holds it, StoreLocked says so at once (the lock is tried before Qdrant loads the collections).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from ..base import StoreConfigError, StoreLocked, StoreUnavailable
from . import matching
from .history import vacuum_sqlite

LOCKED = (
    "the embedded Qdrant folder is in use by another process (the Mem0 application): stop the application "
    "or run Qdrant in server mode, then retry"
)
Row = tuple[str, dict[str, Any]]


def _condition(key: str, value: Any) -> Any:
    from qdrant_client import models

    if isinstance(value, list):
        return models.FieldCondition(key=key, match=models.MatchAny(any=value))
    return models.FieldCondition(key=key, match=models.MatchValue(value=value))


def scope_filter(scope: dict[str, Any]) -> Any:
    """A Qdrant filter at least as wide as the scope (the exact decision is matching.point_matches)."""
    from qdrant_client import models

    must: list[Any] = []
    for key in matching.IDENTITY_KEYS:
        if key in scope:
            must.append(_condition(key, scope[key]))
    for key, value in scope.get("metadata", {}).items():
        if isinstance(value, str | bool):
            must.append(_condition(key, value))
    if "memory_ids" in scope:
        must.append(models.HasIdCondition(has_id=scope["memory_ids"]))
    return models.Filter(must=must) if must else None


class QdrantBackend:
    native = "qdrant"

    def __init__(self, config: Any):
        self.config = config  # mem0's validated QdrantConfig
        self.collection = config.collection_name
        self.entities = f"{self.collection}_entities"
        self.client: Any = None
        self.local = False
        self._journal = ""

    # --- connection ---------------------------------------------------------------------------------------
    def _params(self) -> dict[str, Any]:
        """The same choice Mem0's Qdrant class makes between server and embedded mode."""
        c = self.config
        params: dict[str, Any] = {}
        if c.api_key:
            params["api_key"] = c.api_key
        if c.url:
            params["url"] = c.url
        if c.host and c.port:
            params["host"], params["port"] = c.host, c.port
        if c.https is not None:
            params["https"] = c.https
        if not params:
            if not c.path:
                raise StoreConfigError(
                    "vector_store.config.path: a Qdrant path, url or host is needed", "path"
                )
            params["path"] = c.path
        return params

    def open(self) -> None:
        from qdrant_client import QdrantClient

        params = self._params()
        self.local = "path" in params
        if self.local:
            path = params["path"]
            if not os.path.isdir(path):
                raise StoreConfigError("vector_store.config.path: no Qdrant folder at this path", "path")
            self._check_lock(path)
        try:
            self.client = QdrantClient(**params)
            self.client.get_collections()
            if self.local:
                self._journal = set_local_journal(self.client, "wal")
        except RuntimeError as exc:
            if "already accessed" in str(exc):
                raise StoreLocked(LOCKED) from exc
            raise StoreUnavailable("Qdrant could not be opened") from exc
        except Exception as exc:
            raise StoreUnavailable(f"Qdrant did not answer ({type(exc).__name__})") from exc

    @staticmethod
    def _check_lock(path: str) -> None:
        """Tries Qdrant's own folder lock without waiting (Qdrant would first load every point, then fail)."""
        import portalocker

        lock_path = os.path.join(path, ".lock")
        if not os.path.exists(lock_path):
            return
        with open(lock_path, "r+") as handle:
            try:
                portalocker.lock(handle, portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING)
            except portalocker.exceptions.LockException as exc:
                raise StoreLocked(LOCKED) from exc
            portalocker.unlock(handle)

    def close(self) -> None:
        if self.client is not None:
            if self.local and self._journal:
                set_local_journal(self.client, self._journal)
            self.client.close()
            self.client = None

    def has(self, collection: str) -> bool:
        return bool(self.client.collection_exists(collection))

    def describe(self) -> str:
        if not self.has(self.collection):
            return f"collection '{self.collection}' not found"
        points = self.client.count(self.collection, exact=True).count
        mode = "embedded" if self.local else "server"
        return f"Qdrant ({mode}): collection '{self.collection}' found, {points} points"

    # --- memories -----------------------------------------------------------------------------------------
    def scan(
        self, scope: dict[str, Any], keys: list[str], offset: Any = None, limit: int = 1000
    ) -> Iterator[Row]:
        """Every point the scope's filter reaches (ids and the few payload keys needed, never vectors or text),
        from `offset` on, in id order."""
        if not self.has(self.collection):
            return
        flt = self._filter(scope_filter(scope))
        while True:
            points, offset = self.client.scroll(
                self.collection,
                scroll_filter=flt,
                limit=limit,
                offset=offset,
                with_payload=keys,
                with_vectors=False,
            )
            for point in points:
                yield str(point.id), point.payload or {}
            if offset is None:
                return

    def take_batch(
        self, scope: dict[str, Any], holds: list[dict[str, Any]], state: dict[str, Any], size: int
    ) -> list[Row]:
        """The next `size` erasable points after the saved cursor; advances state["cursor"]."""
        if not self.has(self.collection):
            return []
        flt = self._filter(scope_filter(scope))
        keys = matching.payload_keys(scope, holds)
        offset = state.get("cursor")
        batch: list[Row] = []
        while len(batch) < size:
            points, offset = self.client.scroll(
                self.collection,
                scroll_filter=flt,
                limit=size,
                offset=offset,
                with_payload=keys,
                with_vectors=False,
            )
            for point in points:
                pid, payload = str(point.id), point.payload or {}
                if matching.point_matches(scope, pid, payload) and not matching.held(holds, pid, payload):
                    batch.append((pid, payload))
            if offset is None:
                break
        state["cursor"] = None if offset is None else str(offset)
        state["exhausted"] = offset is None
        return batch

    def delete(self, ids: Sequence[str]) -> None:
        from qdrant_client import models

        if ids and self.has(self.collection):
            self.client.delete(
                self.collection, points_selector=models.PointIdsList(points=list(ids)), wait=True
            )

    def existing(self, ids: Sequence[str]) -> set[str]:
        if not ids or not self.has(self.collection):
            return set()
        found = self.client.retrieve(self.collection, ids=list(ids), with_payload=False, with_vectors=False)
        return {str(p.id) for p in found}

    # --- the entity collection ------------------------------------------------------------------------------
    def _filter(self, flt: Any) -> Any:
        """Embedded Qdrant evaluates a payload filter in Python over every point of the collection at each
        scroll call (about 0.4 ms a point): one plain pass over ids and a few payload keys, decided here, is
        faster. A server evaluates it natively on its payload indexes."""
        return None if self.local else flt

    def _entity_rows(self, flt: Any, keep: Any = None) -> list[Row]:
        if not self.has(self.entities):
            return []
        flt = self._filter(flt)
        rows: list[Row] = []
        offset = None
        while True:
            points, offset = self.client.scroll(
                self.entities,
                scroll_filter=flt,
                limit=1000,
                offset=offset,
                with_payload=[*matching.SESSION_KEYS, "linked_memory_ids"],
                with_vectors=False,
            )
            rows.extend((str(p.id), p.payload or {}) for p in points if keep is None or keep(p.payload or {}))
            if offset is None:
                return rows

    def entities_linked(self, ids: Sequence[str], sessions: Sequence[dict[str, str]] = ()) -> list[Row]:
        from qdrant_client import models

        if not ids:
            return []
        wanted = set(ids)
        cond = models.FieldCondition(key="linked_memory_ids", match=models.MatchAny(any=list(ids)))
        return self._entity_rows(
            models.Filter(must=[cond]), lambda p: bool(wanted.intersection(p.get("linked_memory_ids") or []))
        )

    def entities_of(self, ids: dict[str, str]) -> list[Row]:
        from qdrant_client import models

        return self._entity_rows(
            models.Filter(must=[_condition(k, v) for k, v in ids.items()]),
            lambda p: all(p.get(k) == v for k, v in ids.items()),
        )

    def delete_entities(self, ids: Sequence[str]) -> None:
        from qdrant_client import models

        if ids and self.has(self.entities):
            self.client.delete(
                self.entities, points_selector=models.PointIdsList(points=list(ids)), wait=True
            )

    def set_entity_links(self, links: dict[str, list[str]]) -> None:
        from qdrant_client import models

        if not links:
            return
        operations = [
            models.SetPayloadOperation(
                set_payload=models.SetPayload(payload={"linked_memory_ids": linked}, points=[entity_id])
            )
            for entity_id, linked in links.items()
        ]
        self.client.batch_update_points(self.entities, update_operations=operations, wait=True)

    # --- residue in the embedded files ------------------------------------------------------------------------
    def vacuum(self) -> None:
        """Embedded Qdrant keeps each point pickled in a SQLite file per collection; a deleted point's payload
        (the memory text) stays in its free pages until the file is rebuilt. Run while the folder lock is ours."""
        if not self.local:
            return
        for name in (self.collection, self.entities):
            path = os.path.join(self.config.path, "collection", name, "storage.sqlite")
            if os.path.isfile(path):
                conn = sqlite3.connect(path, timeout=30, isolation_level=None)
                try:
                    vacuum_sqlite(conn)
                finally:
                    conn.close()

    def commit_batch(self, ids: Sequence[str]) -> None:
        self.delete(ids)


def set_local_journal(client: Any, mode: str) -> str:
    """Embedded Qdrant persists each point in its own SQLite commit (one fsync each: ~13 ms here, so 75 points/s).
    While the job holds the folder, its collections' files run in WAL mode with synchronous=NORMAL — commits
    without an fsync each, still crash-safe (a power cut can only undo the last commits, which the job's pending
    batch redoes) — and are put back to their own mode when the job closes them. Returns the mode found.
    Reaches into qdrant-client's local storage; on a version without it, Qdrant's default is kept."""
    found = ""
    try:
        collections = client._client.collections
        for collection in collections.values():
            conn = collection.storage.storage if collection.storage is not None else None
            if conn is None:
                continue
            found = found or conn.execute("PRAGMA journal_mode").fetchone()[0]
            conn.execute(f"PRAGMA journal_mode={mode}")
            conn.execute("PRAGMA synchronous=" + ("NORMAL" if mode == "wal" else "FULL"))
    except (AttributeError, sqlite3.Error):
        return ""
    return found
