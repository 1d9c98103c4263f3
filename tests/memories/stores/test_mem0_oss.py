"""The mem0_oss connector on Mem0 OSS with embedded Qdrant, built and read back by Mem0's own code."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from memories.stores.base import StoreConfigError, StoreLocked, StoreUnavailable
from memories.stores.mem0_oss import Mem0OssConnector, matching

from .mem0_oss_helpers import (
    KILLED_RUN,
    ROOT,
    JsonProgress,
    build_scenario,
    close_memory,
    file_hits,
    folder_hits,
    open_memory,
    qdrant_config,
)


@pytest.fixture
def store(tmp_path):
    config = qdrant_config(tmp_path)
    return config, build_scenario(config)


def history_rows(config, memory_ids):
    conn = sqlite3.connect(config["history_db_path"])
    marks = ",".join("?" * len(memory_ids))
    n = conn.execute(
        f"SELECT count(*) FROM history WHERE memory_id IN ({marks})", list(memory_ids)
    ).fetchone()[0]
    conn.close()
    return n


def test_count_reports_what_an_erasure_would_take_and_what_a_hold_keeps(store):
    config, s = store

    counted = Mem0OssConnector(config).count({"user_id": "alice"}, s["held"])

    assert counted.total == len(s["alice_ids"]) == 8
    assert counted.held == 1
    assert counted.by_agent == {"nurse": 4, "coach": 3, "": 1}  # "": no agent id, as every store counts them
    assert counted.by_run == {"r0": 2, "r1": 3, "r2": 2, "": 1}
    assert counted.by_user == {"alice": 8}


def test_erase_removes_the_subject_everywhere_mem0_keeps_it(store, tmp_path):
    config, s = store
    expected_history = history_rows(config, [*s["alice_ids"], s["gone_id"]])
    connector = Mem0OssConnector(config, batch_size=3)
    progress = JsonProgress(tmp_path / "progress.json")

    finished = connector.erase({"user_id": "alice"}, s["held"], progress)

    assert finished is True
    assert sorted(progress.deleted) == sorted(s["alice_ids"])
    assert (
        progress.residue.history_rows == expected_history == 11
    )  # 9 ADD, 1 UPDATE, the DELETE row Mem0 wrote
    assert (
        progress.residue.entity_rows == 2
    )  # "St Mary clinic", and "Old Phone Co" left behind by Mem0 (#7226)
    assert progress.residue.messages == 3
    assert connector.verify({"user_id": "alice"}, s["held"], erased_ids=progress.deleted) == {
        "vectors": 0,
        "entities": 0,
        "history": 0,
        "messages": 0,
    }
    for text in s["alice_texts"]:
        assert file_hits(Path(config["history_db_path"]), text) == 0, text
        assert folder_hits(Path(config["vector_store"]["config"]["path"]), text) == 0, text


def test_erase_gives_embedded_qdrant_its_files_back_as_it_keeps_them(store, tmp_path):
    config, s = store
    files = sorted(Path(config["vector_store"]["config"]["path"]).rglob("storage.sqlite"))
    before = [sqlite3.connect(f).execute("PRAGMA journal_mode").fetchone()[0] for f in files]

    Mem0OssConnector(config).erase({"user_id": "alice"}, s["held"], JsonProgress(tmp_path / "p.json"))

    after = [sqlite3.connect(f).execute("PRAGMA journal_mode").fetchone()[0] for f in files]
    assert len(files) == 2 and before == after == ["delete", "delete"]
    assert not [f for f in files if Path(f"{f}-wal").exists()]


def test_erase_leaves_bystanders_and_held_memories_as_mem0_reads_them(store, tmp_path):
    config, s = store

    Mem0OssConnector(config).erase({"user_id": "alice"}, s["held"], JsonProgress(tmp_path / "p.json"))

    memory = open_memory(config)
    try:
        alice_left = memory.get_all(filters={"user_id": "alice"})["results"]
        bob_left = memory.get_all(filters={"user_id": "bob"})["results"]
        assert [m["id"] for m in alice_left] == [s["held_id"]]
        assert [m["memory"] for m in bob_left] == ["Bob-2c1 prefers window seats"]
        assert [h["event"] for h in memory.history(s["held_id"])] == ["ADD"]
        assert [h["event"] for h in memory.history(s["bob_id"])] == ["ADD"]
        assert [m["content"] for m in memory.db.get_last_messages(s["bob_session"])] == [
            "Bob-2c1 chat: hello"
        ]
        entities = {r.payload["data"] for r in memory.entity_store.list(filters={}, top_k=100)[0]}
        assert entities == {"Alice Example", "Bob Sample"}  # Alice Example still links the held memory
    finally:
        close_memory(memory)


def test_erase_is_idempotent_a_second_run_finds_nothing(store, tmp_path):
    config, s = store
    connector = Mem0OssConnector(config)
    connector.erase({"user_id": "alice"}, s["held"], JsonProgress(tmp_path / "first.json"))

    again = JsonProgress(tmp_path / "second.json")
    assert connector.erase({"user_id": "alice"}, s["held"], again) is True

    assert again.deleted == []
    assert vars(again.residue) == {"history_rows": 0, "entity_rows": 0, "messages": 0}


def test_a_run_whose_time_runs_out_resumes_with_exact_counts(store, tmp_path):
    config, s = store
    connector = Mem0OssConnector(config, batch_size=2)
    path = tmp_path / "progress.json"

    runs = 0
    while not connector.erase({"user_id": "alice"}, s["held"], JsonProgress(path, budget=1)):
        runs += 1

    done = JsonProgress(path)
    assert runs >= 2  # batches of 2–3 of the 8 memories, one batch per run
    assert sorted(done.deleted) == sorted(s["alice_ids"])
    assert vars(done.residue) == {"history_rows": 11, "entity_rows": 2, "messages": 3}


@pytest.mark.parametrize("point", ["pending", "done"])
def test_a_worker_killed_mid_erasure_resumes_with_exact_counts(store, tmp_path, point):
    import json

    config, s = store
    path = tmp_path / "progress.json"
    script = KILLED_RUN.format(
        root=str(ROOT), config=json.dumps(config), path=str(path), point=point, holds=s["held"]
    )

    killed = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, timeout=120)
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    assert JsonProgress(path).state.get("pending")  # it died with a batch in flight

    assert Mem0OssConnector(config, batch_size=3).erase({"user_id": "alice"}, s["held"], JsonProgress(path))

    done = JsonProgress(path)
    assert sorted(done.deleted) == sorted(s["alice_ids"])
    assert vars(done.residue) == {"history_rows": 11, "entity_rows": 2, "messages": 3}


HOLDER = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, {root!r})
    from tests.memories.stores.mem0_oss_helpers import open_memory
    memory = open_memory(json.loads({config!r}))
    print("ready", flush=True)
    sys.stdin.read()
    """
)


def test_a_locked_embedded_qdrant_fails_clearly_and_a_retry_succeeds_once_free(store, tmp_path):
    import json

    config, s = store
    app = subprocess.Popen(
        [sys.executable, "-c", HOLDER.format(root=str(ROOT), config=json.dumps(config))],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert app.stdout is not None and app.stdout.readline().strip() == b"ready"
        connector = Mem0OssConnector(config)
        progress = JsonProgress(tmp_path / "p.json")

        with pytest.raises(StoreLocked, match="stop the application or run Qdrant in server mode"):
            connector.erase({"user_id": "alice"}, s["held"], progress)
        ok, detail = connector.test()
        assert ok is False and "server mode" in detail
    finally:
        app.communicate(b"", timeout=60)

    assert progress.deleted == []
    assert connector.erase({"user_id": "alice"}, s["held"], progress) is True
    assert sorted(progress.deleted) == sorted(s["alice_ids"])


def test_a_history_file_locked_by_the_application_is_retried_and_then_completes(store, tmp_path):
    config, s = store
    connector = Mem0OssConnector(config, batch_size=3, busy_timeout=0.2)
    path = tmp_path / "p.json"
    app = sqlite3.connect(config["history_db_path"], isolation_level=None)
    app.execute("BEGIN EXCLUSIVE")  # the application mid-write

    with pytest.raises(StoreUnavailable, match="retry"):
        connector.erase({"user_id": "alice"}, s["held"], JsonProgress(path))
    app.execute("ROLLBACK")
    app.close()

    assert connector.erase({"user_id": "alice"}, s["held"], JsonProgress(path)) is True
    done = JsonProgress(path)
    assert sorted(done.deleted) == sorted(s["alice_ids"])
    assert vars(done.residue) == {"history_rows": 11, "entity_rows": 2, "messages": 3}


def test_test_connection_reports_the_collection_without_personal_data(store):
    config, _ = store

    ok, detail = Mem0OssConnector(config).test()

    assert ok is True
    assert detail == "Qdrant (embedded): collection 'mem0' found, 10 points; history file found"


def test_mem0s_own_vector_store_classes_erase_the_same_way(store, tmp_path):
    config, s = store
    connector = Mem0OssConnector(config, batch_size=3, native=False)
    progress = JsonProgress(tmp_path / "p.json")

    assert connector.count({"user_id": "alice"}, s["held"]).total == 8
    assert connector.erase({"user_id": "alice"}, s["held"], progress) is True

    assert sorted(progress.deleted) == sorted(s["alice_ids"])
    assert vars(progress.residue) == {"history_rows": 11, "entity_rows": 2, "messages": 3}
    assert set(connector.verify({"user_id": "alice"}, s["held"], erased_ids=progress.deleted).values()) == {0}
    assert file_hits(Path(config["history_db_path"]), "Alice-9f3") == 1  # the held memory's ADD row only


def test_a_narrower_scope_erases_only_its_memories_and_keeps_the_chat(store, tmp_path):
    config, s = store
    connector = Mem0OssConnector(config)
    progress = JsonProgress(tmp_path / "p.json")

    connector.erase({"user_id": "alice", "agent_id": "coach"}, [], progress)

    assert len(progress.deleted) == 3
    assert progress.residue.messages == 0
    assert connector.count({"user_id": "alice"}, []).total == 6


@pytest.mark.parametrize(
    "config, field",
    [
        ("not a dict", "config"),
        ({}, "vector_store"),
        ({"vector_store": {"provider": "nosuchdb"}}, "vector_store.provider"),
        ({"vector_store": {"provider": "qdrant", "config": {"colour": "red"}}}, "vector_store.config"),
        (
            {"vector_store": {"provider": "qdrant", "config": {"path": "/x"}}, "history_db_path": 3},
            "history_db_path",
        ),
    ],
)
def test_a_wrong_config_is_refused_naming_the_field(config, field):
    with pytest.raises(StoreConfigError) as raised:
        Mem0OssConnector(config)
    assert raised.value.field == field


def test_a_config_error_never_echoes_a_secret():
    with pytest.raises(StoreConfigError) as raised:
        Mem0OssConnector(
            {"vector_store": {"provider": "pgvector", "config": {"dbname": "x"}}}, {"password": 12345}
        )
    assert "12345" not in str(raised.value)


def test_session_scopes_read_back_exactly_as_mem0_builds_them():
    from mem0.memory.main import _build_session_scope

    ids = {"user_id": "a&b=c%d", "agent_id": "x", "run_id": "r=1"}
    built = _build_session_scope(ids)

    assert matching.parse_session_scope(built) == ids
    assert matching.build_session_scope(ids) == built
    assert matching.parse_session_scope("something else") is None


def test_metadata_containment_follows_jsonb():
    payload = {"user_id": "a", "topic": "home", "tags": ["x", "y"], "n": 1, "flag": True}

    assert matching.contains(payload, {"topic": "home", "tags": ["y"]})
    assert not matching.contains(payload, {"tags": "x"})
    assert not matching.contains(payload, {"n": True})
    assert not matching.contains(payload, {"topic": "work"})


def test_the_payload_filters_sent_to_a_qdrant_server_select_the_same_points(store, tmp_path):
    # No Qdrant server here: embedded Qdrant evaluates the same filter models a server would receive.
    from memories.stores.mem0_oss.qdrant import QdrantBackend

    class FilteringQdrant(QdrantBackend):
        def _filter(self, flt):
            return flt

    config, s = store
    connector = Mem0OssConnector(config, batch_size=3)
    connector.backend = FilteringQdrant(connector.backend.config)
    progress = JsonProgress(tmp_path / "p.json")

    assert connector.count({"user_id": ["alice", "carol"], "metadata": {"topic": "home"}}, []).total == 1
    assert connector.erase({"user_id": "alice"}, s["held"], progress) is True

    assert sorted(progress.deleted) == sorted(s["alice_ids"])
    assert vars(progress.residue) == {"history_rows": 11, "entity_rows": 2, "messages": 3}
