"""The peer reference: Mem0 OSS `Memory.delete_all(user_id=…)` on embedded Qdrant, fully offline.

    python -m bench.mem0_peer N     adds N memories for one user (infer=False: no LLM), times delete_all, prints JSON

The embedder is a deterministic hash (sha256 of the text spread over a fixed dimension), so nothing is downloaded
and no network is used; Qdrant runs embedded at a temporary path, the history database is a temporary SQLite file.
"""

import hashlib
import json
import os
import struct
import sys
import tempfile
import time

os.environ.setdefault("MEM0_TELEMETRY", "False")
os.environ.setdefault(
    "OPENAI_API_KEY", "offline-bench-no-network"
)  # the LLM client is built but never called

DIMS = 64


class HashEmbedding:
    """Deterministic fixed-dimension vector from the text's sha256: same text, same vector."""

    def embed(self, text, memory_action=None):
        digest = hashlib.sha256(text.encode("utf-8")).digest() * (DIMS * 4 // 32)
        values = struct.unpack(f"{DIMS}i", digest[: DIMS * 4])
        return [v / 2**31 for v in values]

    def embed_batch(self, texts, memory_action="add"):
        return [self.embed(t, memory_action) for t in texts]


def main(n: int) -> None:
    import logging

    logging.disable(logging.WARNING)
    from mem0 import Memory

    with tempfile.TemporaryDirectory(prefix="mem0-bench-") as tmp:
        config = {
            "vector_store": {
                "provider": "qdrant",
                "config": {"collection_name": "bench", "path": f"{tmp}/qdrant", "on_disk": True,
                           "embedding_model_dims": DIMS},
            },
            "embedder": {"provider": "openai", "config": {"api_key": "offline", "embedding_dims": DIMS}},
            "llm": {"provider": "openai", "config": {"api_key": "offline"}},
            "history_db_path": f"{tmp}/history.db",
        }  # fmt: skip
        memory = Memory.from_config(config)
        memory.embedding_model = HashEmbedding()
        started = time.perf_counter()
        for i in range(n):
            memory.add(
                f"I like topic {i % 10} and my reminder number is {i}", user_id="peer-user", infer=False
            )
        add_seconds = time.perf_counter() - started
        before = len(memory.get_all(filters={"user_id": "peer-user"}, top_k=n + 10)["results"])
        started = time.perf_counter()
        memory.delete_all(user_id="peer-user")
        seconds = time.perf_counter() - started
        after = len(memory.get_all(filters={"user_id": "peer-user"}, top_k=n + 10)["results"])
        history_rows = memory.db.connection.execute("SELECT count(*) FROM history").fetchone()[0]
        memory.vector_store.client.close()
    print(json.dumps({"n": before, "seconds": seconds, "left": after, "add_seconds": add_seconds,
                      "history_rows": history_rows}))  # fmt: skip


if __name__ == "__main__":
    main(int(sys.argv[1]))
