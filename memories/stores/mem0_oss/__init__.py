"""The `mem0_oss` connector: erases a subject from a Mem0 OSS deployment — its vector store (native paths for
Qdrant and pgvector, Mem0's own classes for every other provider), the `<collection>_entities` rows, and the
history file's `history` and `messages` rows — then makes the deleted text unrecoverable from the files.

Resumable with exact counts: each batch is first recorded as pending (ids and the residue it will purge) through
`progress.checkpoint`, then deleted, then recorded as done; a run killed in between redoes the pending batch
(every step is idempotent) and counts it once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ..base import EraseProgress, Residue, ScopeCount, StoreConfigError, StoreError, StoreUnavailable
from . import matching
from .history import HistoryFile

os.environ.setdefault("MEM0_TELEMETRY", "False")  # a worker must never phone home when it imports mem0

BATCH = 1000
NONE_KEY = ""  # the key under which memories without an agent_id / run_id are counted


def _config_error(exc: Exception) -> str:
    """A validation message without the offending values (they may be secrets)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        parts = []
        for err in errors(include_input=False, include_url=False):
            where = ".".join(str(p) for p in err.get("loc", ()))
            parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        return "; ".join(parts)
    return str(exc).split("\n")[0][:200]


class Mem0OssConnector:
    kind = "mem0_oss"

    def __init__(
        self,
        config: dict[str, Any],
        secrets: dict[str, Any] | None = None,
        *,
        batch_size: int = BATCH,
        native: bool = True,
        busy_timeout: float = 30.0,
    ):
        """`config` is the dict given to Mem0's `Memory.from_config()`; `secrets` (password, api_key,
        connection_string…) are merged into its `vector_store.config`. `native=False` takes Mem0's own vector-store
        classes even for Qdrant and pgvector (the path every other provider takes)."""
        if not isinstance(config, dict):
            raise StoreConfigError("config must be the object given to Mem0's Memory.from_config()", "config")
        vector_store = config.get("vector_store")
        if not isinstance(vector_store, dict):
            raise StoreConfigError("vector_store is required (provider and config)", "vector_store")
        from mem0.utils.factory import VectorStoreFactory

        provider = vector_store.get("provider")
        if not isinstance(provider, str) or provider not in VectorStoreFactory.provider_to_class:
            raise StoreConfigError(
                "vector_store.provider must be one of Mem0's vector stores: "
                + ", ".join(sorted(VectorStoreFactory.provider_to_class)),
                "vector_store.provider",
            )
        store_config = vector_store.get("config") or {}
        if not isinstance(store_config, dict):
            raise StoreConfigError("vector_store.config must be an object", "vector_store.config")
        if secrets is not None and not isinstance(secrets, dict):
            raise StoreConfigError("secrets must be an object", "secrets")
        history_path = config.get("history_db_path")
        if history_path is not None and not isinstance(history_path, str):
            raise StoreConfigError("history_db_path must be a file path", "history_db_path")
        from mem0.vector_stores.configs import VectorStoreConfig

        try:  # Mem0's own validation, with the secrets (password, api_key, connection_string) merged in
            validated = VectorStoreConfig(provider=provider, config={**store_config, **(secrets or {})})
        except Exception as exc:  # pydantic.ValidationError or ValueError
            raise StoreConfigError(
                f"vector_store.config: {_config_error(exc)}", "vector_store.config"
            ) from exc
        self.provider = provider
        self.batch_size = batch_size
        self.history = HistoryFile(
            history_path if history_path is not None else _mem0_default_history(), busy_timeout=busy_timeout
        )
        self.backend = _backend(provider, validated.config, native)

    # --- the Connector protocol ------------------------------------------------------------------------------
    def test(self) -> tuple[bool, str]:
        try:
            self.backend.open()
            try:
                detail = self.backend.describe()
            finally:
                self.backend.close()
        except StoreError as exc:
            return False, str(exc)
        if self.history.path is None:
            return True, f"{detail}; no history file configured"
        if not self.history.exists():
            return False, f"{detail}; history_db_path: no Mem0 history file at this path"
        return True, f"{detail}; history file found"

    def count(self, scope: dict[str, Any], holds: Sequence[dict[str, Any]]) -> ScopeCount:
        with _Open(self.backend):
            return self._count(scope, list(holds))

    def erase(self, scope: dict[str, Any], holds: Sequence[dict[str, Any]], progress: EraseProgress) -> bool:
        with _Open(self.backend):
            return self._erase(scope, list(holds), progress)

    def verify(
        self, scope: dict[str, Any], holds: Sequence[dict[str, Any]], erased_ids: Sequence[str] = ()
    ) -> dict[str, int]:
        """Counts what is left: memories in scope (unheld), entity rows still linked to an erased memory or
        dangling under the subject's ids, history rows of the erased ids, the subject's chat turns. `erased_ids`
        are the ids the job recorded (the history file has no user column: its rows are found by memory id)."""
        holds = list(holds)
        with _Open(self.backend):
            vectors = self._count(scope, holds).total
            stale = {pid for pid, _ in self.backend.entities_linked(list(erased_ids), self._sessions(scope))}
            dangling_rows, _, gone = self._dangling_entities(scope)
            stale.update(dangling_rows)
            history = self.history.count_history(sorted(set(erased_ids) | gone))
            messages = sum(self.history.session_scopes(scope, holds).values())
        return {"vectors": vectors, "entities": len(stale), "history": history, "messages": messages}

    # --- count ----------------------------------------------------------------------------------------------
    def _count(self, scope: dict[str, Any], holds: list[dict[str, Any]]) -> ScopeCount:
        result = ScopeCount()
        for pid, payload in self.backend.scan(scope, matching.payload_keys(scope, holds)):
            if not matching.point_matches(scope, pid, payload):
                continue
            if matching.held(holds, pid, payload):
                result.held += 1
                continue
            result.total += 1
            # as the other stores count them: memories without an agent/run id under "" (the workflow's NONE_KEY)
            for key, bucket in (
                ("agent_id", result.by_agent),
                ("run_id", result.by_run),
                ("user_id", result.by_user),
            ):
                name = payload.get(key) or NONE_KEY
                bucket[name] = bucket.get(name, 0) + 1
        return result

    # --- erase ----------------------------------------------------------------------------------------------
    def _erase(self, scope: dict[str, Any], holds: list[dict[str, Any]], progress: EraseProgress) -> bool:
        state = dict(progress.state or {})
        state.setdefault("phase", "vectors")
        if state.get("pending"):
            self._finish(progress, state, resumed=True)
        if state["phase"] == "vectors":
            while not state.get("exhausted"):
                if progress.time_left() <= 0:
                    return False
                batch = self.backend.take_batch(scope, holds, state, self.batch_size)
                if not batch:
                    break
                ids = [pid for pid, _ in batch]
                sessions = _sessions_of(payload for _, payload in batch)
                # A whole person/agent/run: their entity rows all carry their ids, and are settled once, after the
                # memories (below) — not rewritten batch after batch as their links shrink.
                whole = matching.whole_identity(scope)
                drop, keep = ([], {}) if whole else self._entity_plan(ids, sessions)
                state["pending"] = {
                    "ids": ids,
                    "history": self.history.count_history(ids),
                    "entity_delete": drop,
                    "entity_update": keep,
                }
                progress.checkpoint(state=state)
                self.backend.commit_batch(ids)
                self._finish(progress, state)
            state.update(phase="entities", exhausted=False)
            progress.checkpoint(state=state)
        if state["phase"] == "entities":
            # Rows under the subject's ids whose memories are gone (e.g. left by Mem0's own delete, #7226), and
            # the history of those vanished memories.
            rows, updates, gone = self._dangling_entities(scope)
            state["pending"] = {
                "history_ids": sorted(gone),
                "history": self.history.count_history(sorted(gone)),
                "entity_delete": rows,
                "entity_update": updates,
            }
            state["phase"] = "messages"
            progress.checkpoint(state=state)
            self._finish(progress, state)
        if state["phase"] == "messages":
            chats = self.history.session_scopes(scope, holds)
            state["pending"] = {"chats": sorted(chats), "messages": sum(chats.values())}
            state["phase"] = "files"
            progress.checkpoint(state=state)
            self._finish(progress, state)
        if state["phase"] == "files":
            self.history.vacuum()
            self.backend.vacuum()
            state["phase"] = "done"
            progress.checkpoint(state=state)
        return True

    def _finish(self, progress: EraseProgress, state: dict[str, Any], resumed: bool = False) -> None:
        """Carries out the pending step (each action idempotent) and records it with its counts."""
        pending = state["pending"]
        ids = pending.get("ids", [])
        if resumed and ids:
            self.backend.delete(ids)
        self.history.delete_history([*ids, *pending.get("history_ids", [])])
        self.backend.delete_entities(pending.get("entity_delete", []))
        self.backend.set_entity_links(pending.get("entity_update", {}))
        self.history.delete_messages(pending.get("chats", []))
        residue = Residue(
            history_rows=pending.get("history", 0),
            entity_rows=len(pending.get("entity_delete", [])),
            messages=pending.get("messages", 0),
        )
        del state["pending"]
        progress.checkpoint(deleted_ids=ids, state=state, residue=residue)

    def _entity_plan(
        self, ids: list[str], sessions: list[dict[str, str]]
    ) -> tuple[list[str], dict[str, list[str]]]:
        """Entity rows linked to erased memories: dropped when no other memory links them, else unlinked (as
        Mem0's _remove_memory_from_entity_store does)."""
        erased = set(ids)
        drop: list[str] = []
        keep: dict[str, list[str]] = {}
        for entity_id, payload in self.backend.entities_linked(ids, sessions):
            linked = payload.get("linked_memory_ids") or []
            remaining = [m for m in linked if m not in erased]
            if remaining:
                keep[entity_id] = remaining
            else:
                drop.append(entity_id)
        return drop, keep

    @staticmethod
    def _sessions(scope: dict[str, Any]) -> list[dict[str, str]]:
        if any(key in scope for key in matching.SESSION_KEYS) and "app_id" not in scope:
            return [
                {k: v for k, v in combo.items() if k in matching.SESSION_KEYS}
                for combo in matching.identity_filters(scope)
            ]
        return []

    def _dangling_entities(self, scope: dict[str, Any]) -> tuple[list[str], dict[str, list[str]], set[str]]:
        """Entity rows carrying the scope's ids that link memories no longer in the store: those linking none
        that exists (dropped), those linking some (unlinked), and the vanished memory ids. Only for a scope that
        names whole people/agents/runs: a narrower one reaches its own memories' rows, nothing else."""
        rows: dict[str, list[str]] = {}
        if not matching.whole_identity(scope):
            return [], {}, set()
        for ids in self._sessions(scope):
            for entity_id, payload in self.backend.entities_of(ids):
                linked = payload.get("linked_memory_ids") or []
                rows[entity_id] = [str(m) for m in linked] if isinstance(linked, list) else []
        every = sorted({m for linked in rows.values() for m in linked})
        existing: set[str] = set()
        for start in range(0, len(every), self.batch_size):
            existing |= self.backend.existing(every[start : start + self.batch_size])
        drop = [entity_id for entity_id, linked in rows.items() if not existing.intersection(linked)]
        update = {
            entity_id: [m for m in linked if m in existing]
            for entity_id, linked in rows.items()
            if existing.intersection(linked) and not existing.issuperset(linked)
        }
        return drop, update, set(every) - existing


def _sessions_of(payloads: Any) -> list[dict[str, str]]:
    seen = {tuple((k, p[k]) for k in matching.SESSION_KEYS if p.get(k)) for p in payloads}
    return [dict(items) for items in sorted(seen) if items]


def _mem0_default_history() -> str:
    from mem0.configs.base import MemoryConfig

    return str(MemoryConfig.model_fields["history_db_path"].default)


def _backend(provider: str, config: Any, native: bool) -> Any:
    if native and provider == "qdrant":
        from .qdrant import QdrantBackend

        return QdrantBackend(config)
    if native and provider == "pgvector":
        from .pgvector import PgvectorBackend

        return PgvectorBackend(config)
    from .generic import GenericBackend

    return GenericBackend(provider, config)


class _Open:
    def __init__(self, backend: Any):
        self.backend = backend

    def __enter__(self) -> Any:
        self.backend.open()
        return self.backend

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        try:
            self.backend.close()
        except Exception:  # noqa: BLE001 - closing after a failure must not hide the failure
            if error is None:
                raise
        if error is not None and not isinstance(error, StoreError) and _transient(error):
            # A store that went away or a file locked by the application: retried by the workflow. The message
            # names the kind of failure only (a driver's message may quote data).
            raise StoreUnavailable(
                f"the store failed mid-operation ({type(error).__name__}); retry"
            ) from error


def _transient(error: BaseException) -> bool:
    import sqlite3

    if isinstance(error, sqlite3.OperationalError | ConnectionError | TimeoutError | OSError):
        return True
    try:
        import psycopg

        if isinstance(error, psycopg.OperationalError):
            return True
    except ImportError:  # pragma: no cover
        pass
    module = type(error).__module__ or ""
    return module.startswith(("qdrant_client", "httpx", "httpcore", "grpc"))
