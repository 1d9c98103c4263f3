"""Hostile input gets a 400 naming the problem, never a 500, and fails before the database: lone surrogates, NUL,
JSON nested past any recursion limit, filters too large as a whole, bodies over the size limit; and a web query
that runs past the statement timeout answers 503 instead of holding a backend."""

import json
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import psycopg
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from memories.filters import MAX_CONDITIONS, MAX_FILTER_NODES, FilterError, filters_to_q
from memories.services import memories_add
from tests.conftest import test_database_url as database_url

LONE = "\ud800"
ADD = "/v3/memories/add/"


@pytest.fixture
def client(staff_api_key):
    """A client that returns a 500 instead of raising it, as a real server would answer."""
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Token {staff_api_key}")
    return client


def send(client, method: str, path: str, body) -> object:
    raw = body if isinstance(body, str) else json.dumps(body)  # json.dumps escapes a lone surrogate as \ud800
    return getattr(client, method)(path, raw, content_type="application/json")


def message(response) -> str:
    body = response.json()
    return str(body.get("error") or body.get("detail") or body)


def add_body(**extra):
    return {"messages": [{"role": "user", "content": "x"}], "user_id": "u", **extra}


SOME_ID = "01936c4e-0000-7000-8000-000000000001"
MALFORMED = [
    ("post", ADD, add_body(metadata={LONE: 1}), "surrogate"),
    ("post", ADD, add_body(metadata={"k": LONE}), "surrogate"),
    ("post", ADD, json.dumps(add_body(metadata={"k": 0})).replace('"k": 0', '"k": 1e400'), "out of range"),
    ("put", f"/v1/memories/{SOME_ID}/", {"metadata": {LONE: "v"}}, "surrogate"),
    ("put", f"/v1/memories/{SOME_ID}/", {"metadata": {"k": [LONE]}}, "surrogate"),
    ("put", "/v1/batch/", {"memories": [{"memory_id": SOME_ID, "metadata": {"k": LONE}}]}, "surrogate"),
    ("post", "/v3/memories/", {"filters": {"user_id": LONE}}, "surrogate"),
    ("post", "/v3/memories/", {"filters": {"user_id": "u", "metadata": {"k": LONE}}}, "surrogate"),
    ("post", "/v3/memories/search/", {"query": "q", "filters": {"user_id": "a\u0000"}}, "NUL"),
    (
        "post",
        "/v3/memories/",
        {"filters": {"user_id": "u", "metadata": {"k": {"contains": "a\u0000"}}}},
        "NUL",
    ),
    ("post", "/v3/memories/", {"filters": {"user_id": "u", "NOT": {}}}, "non-empty filter object"),
    (
        "post",
        "/v3/memories/",
        {"filters": {"user_id": "u", "OR": [{}, {"agent_id": "a"}]}},
        "non-empty filter",
    ),
]


@pytest.mark.parametrize(("method", "path", "body", "problem"), MALFORMED)
def test_malformed_input_is_a_400_naming_the_problem_before_any_memory_query(
    client, method, path, body, problem
):
    # given: a memory to update, so the update paths reach their validation
    memories_add(texts=["kept"], user_id="u")
    # when
    with CaptureQueriesContext(connection) as queries:
        response = send(client, method, path, body)
    # then: a 400 that says what is wrong, and no statement on the memory tables carried the input
    assert response.status_code == 400, response.content
    assert problem in message(response)
    assert not [q["sql"] for q in queries.captured_queries if "memories_memory" in q["sql"]]


def test_an_entity_name_with_nul_is_a_400(client):
    response = client.delete("/v2/entities/user/%00/")
    assert response.status_code == 400 and "NUL" in message(response)


def nested_logic(levels: int) -> dict:
    node: dict = {"user_id": "u"}
    for _ in range(levels):
        node = {"AND": [node]}
    return node


def test_logic_nested_300_deep_is_a_400(client):
    response = send(client, "post", "/v3/memories/", {"filters": nested_logic(300)})
    assert response.status_code == 400 and "nested too deeply" in message(response)
    with pytest.raises(FilterError, match="nested too deeply"):  # the grammar itself, before any recursion
        filters_to_q(nested_logic(300))


def json_operations() -> list[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return sorted(
        (method, path)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if "requestBody" in operation
    )


@pytest.mark.parametrize(("method", "path"), json_operations())
def test_json_nested_1000_deep_is_a_400_on_every_json_endpoint(client, method, path):
    concrete = path.replace("{request_id}", str(uuid.uuid4())).replace("{hold_id}", str(uuid.uuid4()))
    concrete = concrete.replace("{memory_id}", SOME_ID)
    response = send(client, method, concrete, "[" * 1000 + "]" * 1000)
    assert response.status_code in (400, 404), (path, response.status_code, response.content[:200])
    if response.status_code == 400:
        assert "nested too deeply" in message(response)


def test_a_filter_too_large_as_a_whole_is_a_400_naming_the_bound(client):
    wide = {"user_id": "u", "metadata": {f"k{i}": {"contains": "x"} for i in range(MAX_FILTER_NODES)}}
    response = send(client, "post", "/v3/memories/", {"filters": wide})
    assert response.status_code == 400 and "too large" in message(response)
    many = {"user_id": "u", "metadata": {f"k{i}": {"ne": "x"} for i in range(MAX_CONDITIONS + 1)}}
    response = send(client, "post", "/v3/memories/search/", {"query": "q", "filters": many})
    assert response.status_code == 400 and f"more than {MAX_CONDITIONS} conditions" in message(response)
    # a long `in` list is one condition and stays accepted
    listed = {"user_id": {"in": [f"u{i}" for i in range(1000)]}}
    assert send(client, "post", "/v3/memories/", {"filters": listed}).status_code == 200


@pytest.mark.parametrize("path", ["/v3/memories/", "/api/v1/erasure-requests/"])
def test_a_body_over_the_size_limit_is_a_json_413(client, settings, path):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = send(client, "post", path, {"filters": {"user_id": "u" * 2000}})
    assert response.status_code == 413 and response["Content-Type"] == "application/json"
    assert "too large" in message(response)


def test_a_query_past_the_web_statement_timeout_answers_503(db, staff_api_key, settings):
    # given: the memory table locked by another session, so the list query waits (lock waits count)
    settings.WEB_STATEMENT_TIMEOUT_MS = 300
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Token {staff_api_key}")
    release = threading.Event()
    locked = threading.Event()

    def hold_lock() -> None:
        with psycopg.connect(database_url(), autocommit=False) as other:
            other.execute("LOCK TABLE memories_memory IN ACCESS EXCLUSIVE MODE")
            locked.set()
            release.wait(30)
            other.rollback()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(10)
        # when
        response = send(client, "post", "/v3/memories/", {"filters": {"user_id": "u"}})
    finally:
        release.set()
        holder.join()

    # then: 503 saying why, on a connection that now carries the web limit; the next request is answered
    assert response.status_code == 503, response.content
    assert "time limit (300 ms)" in message(response) and response["Retry-After"]
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "300ms"
    assert send(client, "post", "/v3/memories/", {"filters": {"user_id": "u"}}).status_code == 200


def test_processes_other_than_the_web_server_keep_no_statement_timeout(db):
    """Workers and commands set Django up without running middleware: the web limit never reaches them."""
    code = "from django.db import connection; c = connection.cursor(); c.execute('SHOW statement_timeout'); print(c.fetchone()[0])"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "WEB_STATEMENT_TIMEOUT_MS": "300",
           "DATABASE_URL": database_url()}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", code],
        cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.stdout.strip().splitlines()[-1] == "0", result.stderr


def test_a_null_scope_is_accepted_as_absent(client):
    body = {"regulation": "gdpr", "subject": {"user_ids": ["null-scope-subject"]}, "scope": None}
    response = send(client, "post", "/api/v1/erasure-requests/", body)
    assert response.status_code == 201, response.content


def test_list_and_search_wait_for_a_query_slot_and_answer_503_when_none_frees(client, settings):
    # given: every slot held by another session (as a burst of costly filters would hold them)
    from memories.api.slots import SLOT_NAMESPACE

    settings.WEB_FILTER_QUERY_SLOTS = 2
    settings.WEB_FILTER_QUERY_WAIT_MS = 200
    with psycopg.connect(database_url(), autocommit=True) as other:
        for slot in (1, 2):
            other.execute("SELECT pg_advisory_lock(%s, %s)", [SLOT_NAMESPACE, slot])
        # when
        busy = send(client, "post", "/v3/memories/", {"filters": {"user_id": "u"}})
        busy_search = send(
            client, "post", "/v3/memories/search/", {"query": "q", "filters": {"user_id": "u"}}
        )
        other.execute("SELECT pg_advisory_unlock_all()")
    # then: 503 with Retry-After while taken; answered once a slot is free
    assert busy.status_code == busy_search.status_code == 503 and busy["Retry-After"]
    assert "retry" in message(busy)
    assert send(client, "post", "/v3/memories/", {"filters": {"user_id": "u"}}).status_code == 200
