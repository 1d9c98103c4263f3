"""Every other Mem0 vector store, through Mem0's own classes (`VectorStoreFactory.create`): list by the scope's
identity filters, delete by id — the calls Mem0's own `delete_all` makes, so any provider Mem0 supports is served."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from typing import Any

from ..base import StoreLocked, StoreUnavailable
from . import matching

Row = tuple[str, dict[str, Any]]
LIST_CAP = 10_000  # Mem0 lists entity rows with top_k=10000 itself


def _rows(listed: Any) -> list[Row]:
    from mem0.memory.main import _vector_store_list_rows

    return [(str(r.id), getattr(r, "payload", None) or {}) for r in _vector_store_list_rows(listed)]


class GenericBackend:
    native = ""

    def __init__(self, provider: str, config: Any):
        self.provider = provider
        self.config = config
        self.collection = config.collection_name if hasattr(config, "collection_name") else "mem0"
        self.store: Any = None
        self.entity_store: Any = None

    def open(self) -> None:
        from mem0.memory.main import _entity_collection_name
        from mem0.utils.factory import VectorStoreFactory

        try:
            self.store = VectorStoreFactory.create(self.provider, copy.deepcopy(self.config))
            entity_config = copy.deepcopy(self.config)
            if hasattr(entity_config, "collection_name"):
                entity_config.collection_name = _entity_collection_name(self.provider, self.collection)
            if self.provider == "qdrant" and hasattr(entity_config, "client"):
                entity_config.client = self.store.client  # as Mem0 does: one embedded folder, one client
            self.entity_store = VectorStoreFactory.create(self.provider, entity_config)
        except RuntimeError as exc:
            if "already accessed" in str(exc):
                from .qdrant import LOCKED

                raise StoreLocked(LOCKED) from exc
            raise StoreUnavailable(f"the {self.provider} vector store could not be opened") from exc
        except Exception as exc:
            raise StoreUnavailable(
                f"the {self.provider} vector store could not be opened ({type(exc).__name__})"
            ) from exc

    def close(self) -> None:
        for store in (self.store, self.entity_store):
            client = getattr(store, "client", None)
            if client is not None and hasattr(client, "close"):
                try:
                    client.close()
                except Exception:  # noqa: BLE001 - closing is best effort
                    pass
        self.store = self.entity_store = None

    def describe(self) -> str:
        rows = _rows(self.store.list(filters=None, top_k=LIST_CAP))
        more = "+" if len(rows) >= LIST_CAP else ""
        return f"{self.provider}: collection '{self.collection}' found, {len(rows)}{more} memories"

    def _list(self, filters: dict[str, Any], top_k: int) -> list[Row]:
        return _rows(self.store.list(filters=filters or None, top_k=top_k))

    def _by_ids(self, ids: Sequence[str]) -> list[Row]:
        rows = []
        for pid in ids:
            found = self.store.get(vector_id=pid)
            if found is not None:
                rows.append((str(found.id), getattr(found, "payload", None) or {}))
        return rows

    def scan(
        self, scope: dict[str, Any], keys: list[str], offset: Any = None, limit: int = 1000
    ) -> Iterator[Row]:
        if "memory_ids" in scope:
            yield from self._by_ids(scope["memory_ids"])
            return
        seen: set[str] = set()
        for filters in matching.identity_filters(scope):
            top_k = limit
            while True:  # no paging in Mem0's list(): widen until everything fits
                rows = self._list(filters, top_k)
                if len(rows) < top_k:
                    break
                top_k *= 4
            for pid, payload in rows:
                if pid not in seen:
                    seen.add(pid)
                    yield pid, payload

    def take_batch(
        self, scope: dict[str, Any], holds: list[dict[str, Any]], state: dict[str, Any], size: int
    ) -> list[Row]:
        """The next erasable memories: lists again after each batch (what was deleted is gone), widening `top_k`
        past the memories that stay (held, or outside a narrower scope)."""
        if "memory_ids" in scope:
            rows = self._by_ids(scope["memory_ids"])
            batch = [r for r in rows if matching.point_matches(scope, *r) and not matching.held(holds, *r)][
                :size
            ]
            state["exhausted"] = len(batch) < size
            return batch
        combos = matching.identity_filters(scope)
        while state.get("combo", 0) < len(combos):
            filters = combos[state.get("combo", 0)]
            top_k = size
            while True:
                rows = self._list(filters, top_k)
                batch = [
                    r for r in rows if matching.point_matches(scope, *r) and not matching.held(holds, *r)
                ]
                if batch or len(rows) < top_k:
                    break
                top_k = len(rows) + size
            if batch:
                state["exhausted"] = False
                return batch[:size]
            state["combo"] = state.get("combo", 0) + 1
        state["exhausted"] = True
        return []

    def delete(self, ids: Sequence[str]) -> None:
        for pid in ids:
            if self.store.get(vector_id=pid) is not None:
                self.store.delete(vector_id=pid)

    commit_batch = delete

    def existing(self, ids: Sequence[str]) -> set[str]:
        return {pid for pid in ids if self.store.get(vector_id=pid) is not None}

    def _entity_list(self, filters: dict[str, Any]) -> list[Row]:
        try:
            return _rows(self.entity_store.list(filters=filters or None, top_k=LIST_CAP))
        except Exception:  # noqa: BLE001 - a store without the entity collection has no entity rows
            return []

    def entities_linked(self, ids: Sequence[str], sessions: Sequence[dict[str, str]] = ()) -> list[Row]:
        wanted = set(ids)
        rows: dict[str, dict[str, Any]] = {}
        for filters in sessions or [{}]:
            for pid, payload in self._entity_list(filters):
                linked = payload.get("linked_memory_ids") or []
                if isinstance(linked, list) and wanted.intersection(linked):
                    rows[pid] = payload
        return list(rows.items())

    def entities_of(self, ids: dict[str, str]) -> list[Row]:
        return self._entity_list(ids)

    def delete_entities(self, ids: Sequence[str]) -> None:
        for pid in ids:
            if self.entity_store.get(vector_id=pid) is not None:
                self.entity_store.delete(vector_id=pid)

    def set_entity_links(self, links: dict[str, list[str]]) -> None:
        for entity_id, linked in links.items():
            row = self.entity_store.get(vector_id=entity_id)
            if row is not None:
                payload = {**(row.payload or {}), "linked_memory_ids": linked}
                self.entity_store.update(vector_id=entity_id, vector=None, payload=payload)

    def vacuum(self) -> None:
        return None
