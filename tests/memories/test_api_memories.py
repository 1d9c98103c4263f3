"""The Mem0-compatible API on real PostgreSQL: add, get, update, single delete, history, list, search."""

import datetime
import uuid

import pytest
from rest_framework.test import APIClient

from memories.models import DeletionJob, Memory, MemoryHistory
from memories.services import legal_hold_place, memories_add
from tests.memories.deletion_checks import assert_deleted_exactly, history_rows


def add(api, texts, **extra):
    body = {"messages": [{"role": "user", "content": t} for t in texts], **extra}
    response = api.post("/v3/memories/add/", body, format="json")
    assert response.status_code == 200, response.content
    return response.json()["results"]


# ---- auth and ping ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/v1/ping/"),
        ("post", "/v3/memories/add/"),
        ("post", "/v1/memories/"),
        ("delete", "/v1/memories/"),
        ("get", f"/v1/memories/{uuid.uuid4()}/"),
        ("put", f"/v1/memories/{uuid.uuid4()}/"),
        ("delete", f"/v1/memories/{uuid.uuid4()}/"),
        ("get", f"/v1/memories/{uuid.uuid4()}/history/"),
        ("post", "/v3/memories/"),
        ("post", "/v3/memories/search/"),
        ("get", f"/v1/event/{uuid.uuid4()}/"),
        ("delete", "/v1/batch/"),
        ("put", "/v1/batch/"),
        ("get", "/v1/entities/"),
        ("delete", "/v2/entities/user/alice/"),
    ],
)
def test_every_path_refuses_requests_without_a_valid_key(db, method, path):
    anonymous = APIClient()
    assert getattr(anonymous, method)(path, {}, format="json").status_code == 401
    wrong = APIClient()
    wrong.credentials(HTTP_AUTHORIZATION="Token m0-not-a-real-key")
    response = getattr(wrong, method)(path, {}, format="json")
    assert response.status_code == 401
    assert "error" in response.json()


def test_revoked_key_is_refused(db):
    from django.utils import timezone

    from memories.models import ApiKey
    from memories.services import api_key_create

    key, raw = api_key_create(name="old")
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    assert client.get("/v1/ping/").status_code == 401


def test_ping_answers_status_and_org(api):
    body = api.get("/v1/ping/").json()
    assert body["status"] == "ok" and body["org_id"] and body["project_id"] and "user_email" in body


# ---- add --------------------------------------------------------------------------------------------------------


def test_add_stores_each_message_as_one_memory_with_history(api):
    # when
    results = add(
        api,
        ["I like tea", "I live in Lyon"],
        user_id="alice",
        agent_id="helper",
        metadata={"topic": "profile"},
        infer=True,
    )

    # then
    assert [r["event"] for r in results] == ["ADD", "ADD"]
    assert [r["memory"] for r in results] == ["I like tea", "I live in Lyon"]
    stored = Memory.objects.get(id=results[0]["id"])
    assert (stored.user_id, stored.agent_id, stored.metadata) == ("alice", "helper", {"topic": "profile"})
    assert all(uuid.UUID(r["id"]).version == 7 for r in results)  # time-ordered ids (memories/ids.py)
    # adding writes no history row: the ADD event is derived from the memory itself
    assert not MemoryHistory.objects.exists() and not stored.has_history
    for result in results:
        (event,) = api.get(f"/v1/memories/{result['id']}/history/").json()
        assert (event["memory_id"], event["event"]) == (result["id"], "ADD")
        assert (event["old_memory"], event["new_memory"]) == (None, result["memory"])


def test_legacy_v1_add_and_entity_inside_filters_are_accepted(api):
    legacy = api.post(
        "/v1/memories/", {"messages": [{"role": "user", "content": "legacy"}], "run_id": "r1"}, format="json"
    )
    v3 = api.post(
        "/v3/memories/add/",
        {"messages": [{"role": "assistant", "content": "v3 style"}], "filters": {"user_id": "u9"}},
        format="json",
    )
    assert legacy.status_code == 200 and v3.status_code == 200
    assert Memory.objects.get(id=legacy.json()["results"][0]["id"]).run_id == "r1"
    assert Memory.objects.get(id=v3.json()["results"][0]["id"]).user_id == "u9"


def test_add_stores_immutable_and_expiration(api):
    (result,) = add(api, ["fixed"], user_id="alice", immutable=True, expiration_date="2099-12-31")
    stored = Memory.objects.get(id=result["id"])
    assert stored.immutable and stored.expiration_date == datetime.date(2099, 12, 31)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "user_id"),
        ({"messages": [], "user_id": "a"}, "messages"),
        ({"user_id": "a"}, "messages"),
        ({"messages": "hello", "user_id": "a"}, "messages"),
        ({"messages": [{"role": "user"}], "user_id": "a"}, "content"),
        ({"messages": [{"role": "user", "content": "x"}], "user_id": "a", "expiration_date": "31/12/2099"}, "expiration_date"),
        ({"messages": [{"role": "user", "content": "x"}], "user_id": "a", "metadata": [1, 2]}, "metadata"),
        ({"messages": [{"role": "user", "content": "x"}], "user_id": "a", "immutable": "maybe"}, "immutable"),
        ({"messages": [{"role": "user", "content": "x"}], "user_id": {"a": 1}}, "user_id"),
        ({"messages": [{"role": "user", "content": "x"}], "filters": {"user_id": 5}}, "user_id"),
        ({"messages": [{"role": "user", "content": "  "}], "user_id": "a"}, "messages"),
    ],
)  # fmt: skip
def test_add_rejects_bad_input_naming_the_field(api, body, field):
    response = api.post("/v3/memories/add/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]
    assert not Memory.objects.exists()


def test_malformed_json_is_a_400_not_a_500(api):
    response = api.generic("POST", "/v3/memories/add/", "{not json", content_type="application/json")
    assert response.status_code == 400 and "error" in response.json()


# ---- get / update / delete ----------------------------------------------------------------------------------------


def test_get_returns_the_memory_object(api):
    (result,) = add(api, ["likes tea"], user_id="alice", metadata={"k": "v"}, categories=["food"])
    body = api.get(f"/v1/memories/{result['id']}/").json()
    assert body["id"] == result["id"] and body["memory"] == "likes tea"
    assert body["user_id"] == "alice" and body["agent_id"] is None and body["metadata"] == {"k": "v"}
    assert body["categories"] == ["food"] and body["immutable"] is False and body["expiration_date"] is None
    assert set(body) >= {"app_id", "run_id", "created_at", "updated_at", "hash"}
    assert len(body["hash"]) == 32


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_memory_paths_answer_400_for_a_bad_id_and_404_for_an_unknown_one(api, method):
    bad = getattr(api, method)("/v1/memories/not-a-uuid/", {"text": "x"}, format="json")
    assert bad.status_code == 400 and bad.json() == {"error": "memory_id should be a valid UUID"}
    unknown = getattr(api, method)(f"/v1/memories/{uuid.uuid4()}/", {"text": "x"}, format="json")
    assert unknown.status_code == 404 and unknown.json() == {"error": "Memory not found!"}


def test_history_answers_400_for_a_bad_id_and_404_for_an_unknown_one(api):
    assert api.get("/v1/memories/nope/history/").json() == {"error": "memory_id should be a valid UUID"}
    assert api.get(f"/v1/memories/{uuid.uuid4()}/history/").status_code == 404


def test_update_changes_text_metadata_and_expiration_with_history(api):
    (result,) = add(api, ["old text"], user_id="alice")
    response = api.put(
        f"/v1/memories/{result['id']}/",
        {"text": "new text", "metadata": {"v": 2}, "expiration_date": "2099-01-01"},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (
        body["memory"] == "new text"
        and body["metadata"] == {"v": 2}
        and body["expiration_date"] == "2099-01-01"
    )
    events = api.get(f"/v1/memories/{result['id']}/history/").json()
    assert [e["event"] for e in events] == ["ADD", "UPDATE"]
    assert events[1]["old_memory"] == "old text" and events[1]["new_memory"] == "new text"
    assert set(events[0]) >= {"id", "memory_id", "event", "old_memory", "new_memory", "created_at"}
    cleared = api.put(f"/v1/memories/{result['id']}/", {"expiration_date": None}, format="json")
    assert cleared.json()["expiration_date"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "text"), ({"text": ""}, "text"), ({"metadata": "x"}, "metadata"), ({"expiration_date": "soon"}, "expiration_date")],
)  # fmt: skip
def test_update_rejects_bad_input(api, body, field):
    (result,) = add(api, ["t"], user_id="alice")
    response = api.put(f"/v1/memories/{result['id']}/", body, format="json")
    assert response.status_code == 400 and field in response.json()["error"]


def test_update_of_an_immutable_memory_is_refused(api):
    (result,) = add(api, ["carved in stone"], user_id="alice", immutable=True)
    response = api.put(f"/v1/memories/{result['id']}/", {"text": "changed"}, format="json")
    assert response.status_code == 400
    assert "immutable" in response.json()["error"] and "Delete" in response.json()["error"]
    assert Memory.objects.get(id=result["id"]).text == "carved in stone"


def test_delete_goes_through_the_engine_and_purges_history_text(api):
    (result,) = add(api, ["secret thing"], user_id="alice")
    api.put(f"/v1/memories/{result['id']}/", {"text": "secret thing 2"}, format="json")
    api.put(f"/v1/memories/{result['id']}/", {"text": "secret thing 3"}, format="json")
    assert history_rows([result["id"]]) == 2

    response = api.delete(f"/v1/memories/{result['id']}/")

    assert response.status_code == 200 and response.json() == {"message": "Memory deleted successfully!"}
    job = DeletionJob.objects.get(kind="single")
    (tombstone,) = assert_deleted_exactly(job, [uuid.UUID(result["id"])], history_purged=2)
    assert job.scope is None and tombstone.ids == [uuid.UUID(result["id"])]
    assert not MemoryHistory.objects.exists()
    history = api.get(f"/v1/memories/{result['id']}/history/")
    assert history.status_code == 200
    assert [(e["event"], e["old_memory"], e["new_memory"]) for e in history.json()] == [
        ("DELETE", None, None)
    ]
    assert "secret" not in history.content.decode()
    assert api.delete(f"/v1/memories/{result['id']}/").status_code == 404


def test_delete_of_a_held_memory_answers_409_and_keeps_it(api):
    (result,) = add(api, ["evidence"], user_id="alice")
    legal_hold_place(scope={"memory_ids": [result["id"]]}, reason="art17_3_e", note="", placed_by="t")
    response = api.delete(f"/v1/memories/{result['id']}/")
    assert response.status_code == 409 and "legal hold" in response.json()["error"]
    assert Memory.objects.filter(id=result["id"]).exists()


# ---- list ---------------------------------------------------------------------------------------------------------


def test_list_filters_paginates_and_links_pages(api):
    memories_add(texts=[f"alice {i}" for i in range(5)], user_id="alice")
    memories_add(texts=["bob"], user_id="bob")

    first = api.post("/v3/memories/?page=1&page_size=2", {"filters": {"user_id": "alice"}}, format="json")
    last = api.post("/v3/memories/?page=3&page_size=2", {"filters": {"user_id": "alice"}}, format="json")

    assert first.status_code == 200, first.content
    body = first.json()
    assert body["count"] == 5 and len(body["results"]) == 2 and body["previous"] is None
    assert "page=2" in body["next"] and "page_size=2" in body["next"]
    assert {r["user_id"] for r in body["results"]} == {"alice"}
    assert last.json()["next"] is None and "page=2" in last.json()["previous"]
    assert len(last.json()["results"]) == 1
    seen = {r["id"] for p in (1, 2, 3) for r in api.post(f"/v3/memories/?page={p}&page_size=2",
            {"filters": {"user_id": "alice"}}, format="json").json()["results"]}  # fmt: skip
    assert len(seen) == 5


def test_list_accepts_page_in_the_body_and_or_filters(api):
    memories_add(texts=["a"], user_id="alice")
    memories_add(texts=["b"], user_id="bob")
    memories_add(texts=["c"], user_id="carol")
    body = api.post(
        "/v3/memories/", {"filters": {"OR": [{"user_id": "alice"}, {"user_id": "bob"}]}, "page_size": 10},
        format="json",
    ).json()  # fmt: skip
    assert sorted(r["memory"] for r in body["results"]) == ["a", "b"]


@pytest.mark.parametrize(
    "body",
    [{}, {"filters": {}}, {"filters": {"metadata": {"k": "v"}}}, {"filters": {"created_at": {"gte": "2024-01-01"}}}],
)  # fmt: skip
def test_list_without_an_entity_filter_is_400(api, body):
    response = api.post("/v3/memories/", body, format="json")
    assert response.status_code == 400 and "user_id" in response.json()["error"]


@pytest.mark.parametrize(
    ("query", "body", "needle"),
    [
        ("?page_size=201", {"filters": {"user_id": "a"}}, "page_size"),
        ("?page=0", {"filters": {"user_id": "a"}}, "page"),
        ("?page=x", {"filters": {"user_id": "a"}}, "page"),
        ("", {"filters": {"user_id": "a", "foo": 1}}, "Unknown filter key: foo"),
        ("", {"filters": {"user_id": "a", "created_at": {"xx": "2024-01-01"}}}, "Unsupported operator 'xx' for field 'created_at'"),
        ("", {"filters": "user_id=a"}, "filters"),
    ],
)  # fmt: skip
def test_list_rejects_bad_paging_and_filters(api, query, body, needle):
    response = api.post(f"/v3/memories/{query}", body, format="json")
    assert response.status_code == 400 and needle in response.json()["error"]


def test_list_hides_expired_memories_unless_asked(api):
    memories_add(texts=["old"], user_id="alice", expiration_date=datetime.date(2000, 1, 1))
    memories_add(texts=["current"], user_id="alice", expiration_date=datetime.date(2999, 1, 1))
    memories_add(texts=["forever"], user_id="alice")
    visible = api.post("/v3/memories/", {"filters": {"user_id": "alice"}}, format="json").json()
    everything = api.post(
        "/v3/memories/", {"filters": {"user_id": "alice"}, "show_expired": True}, format="json"
    ).json()
    assert sorted(r["memory"] for r in visible["results"]) == ["current", "forever"]
    assert everything["count"] == 3


# ---- search ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def corpus(db):
    memories_add(texts=["I love eating sushi and ramen", "My favourite food is sushi"], user_id="alice")
    memories_add(texts=["I play tennis on weekends", "Sushi is overrated"], user_id="alice", agent_id="coach")
    memories_add(texts=["Bob also loves sushi"], user_id="bob")


def search(api, body):
    response = api.post("/v3/memories/search/", body, format="json")
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_search_ranks_matches_with_scores_between_0_and_1(api, corpus):
    results = search(api, {"query": "What food does she love?", "filters": {"user_id": "alice"}})
    texts = [r["memory"] for r in results]
    assert "I play tennis on weekends" not in texts and "Bob also loves sushi" not in texts
    assert texts[0] in {"I love eating sushi and ramen", "My favourite food is sushi"}
    assert all(0 < r["score"] < 1 for r in results)
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    assert set(results[0]) >= {"id", "memory", "user_id", "metadata", "score", "created_at"}


def test_search_with_words_not_in_any_memory_finds_nothing(api, corpus):
    assert search(api, {"query": "quantum chromodynamics", "filters": {"user_id": "alice"}}) == []
    assert search(api, {"query": "the of and", "filters": {"user_id": "alice"}}) == []


def test_search_respects_filters_top_k_and_threshold(api, corpus):
    coach = search(api, {"query": "sushi", "filters": {"AND": [{"user_id": "alice"}, {"agent_id": "coach"}]}})
    assert [r["memory"] for r in coach] == ["Sushi is overrated"]
    assert len(search(api, {"query": "sushi", "filters": {"user_id": "alice"}, "top_k": 1})) == 1
    assert search(api, {"query": "sushi", "filters": {"user_id": "alice"}, "threshold": 0.99}) == []


def test_search_hides_expired_memories_unless_asked(api):
    memories_add(texts=["expired sushi"], user_id="alice", expiration_date=datetime.date(2000, 1, 1))
    assert search(api, {"query": "sushi", "filters": {"user_id": "alice"}}) == []
    found = search(api, {"query": "sushi", "filters": {"user_id": "alice"}, "show_expired": True})
    assert [r["memory"] for r in found] == ["expired sushi"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"filters": {"user_id": "a"}}, "query"),
        ({"query": "", "filters": {"user_id": "a"}}, "query"),
        ({"query": "x", "filters": {"user_id": "a"}, "top_k": 1001}, "top_k"),
        ({"query": "x", "filters": {"user_id": "a"}, "top_k": "many"}, "top_k"),
        ({"query": "x", "filters": {"user_id": "a"}, "threshold": 2}, "threshold"),
        ({"query": "x"}, "user_id"),
        ({"query": "x", "filters": {"user_id": {"like": "a%"}}}, "Unsupported operator 'like' for field 'user_id'"),
    ],
)  # fmt: skip
def test_search_rejects_bad_input(api, body, needle):
    response = api.post("/v3/memories/search/", body, format="json")
    assert response.status_code == 400 and needle in response.json()["error"]


def _plan(sql_params):
    from django.db import connection

    sql, params = sql_params
    with connection.cursor() as cur:
        # Statistics of a store that looks like a real one (every row has a user id; metadata, categories and
        # words vary), gathered in this test's transaction: otherwise the plan follows whatever statistics earlier
        # tests of the run left behind, and `user_id IS NOT NULL` (the "*" filter) may look as selective as a GIN.
        cur.execute(
            "INSERT INTO memories_memory (id, text, hash, user_id, metadata, categories, immutable, has_history,"
            " created_at, updated_at) SELECT gen_random_uuid(), 'filler ' || g, md5(g::text), 'u' || (g % 200),"
            " jsonb_build_object('n', g), ARRAY['c' || (g % 50)], false, false, now(), now()"
            " FROM generate_series(1, 3000) g"
        )
        cur.execute("ANALYZE memories_memory")
        # Small tables make a sequential scan cheapest; switch it off to see which index CAN serve it.
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cur.fetchall())
        cur.execute("SET LOCAL enable_seqscan = on")
    return plan


def test_search_uses_the_stored_search_vector_gin_index(api, corpus):
    from memories.selectors import memories_search_queryset

    every_user = memories_search_queryset(query="sushi", filters={"user_id": "*"}, threshold=0)
    one_user = memories_search_queryset(query="sushi", filters={"user_id": "alice"}, threshold=0)

    wildcard_plan = _plan(every_user.query.sql_with_params())
    user_plan = _plan(one_user.query.sql_with_params())

    assert "memory_search_gin" in wildcard_plan and "to_tsvector" not in wildcard_plan
    assert "Seq Scan" not in user_plan and "memory_user_id_idx" in user_plan


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({"user_id": "alice"}, "memory_user_id_idx"),
        ({"agent_id": {"in": ["a", "b"]}}, "memory_agent_id_idx"),
        ({"user_id": "*", "metadata": {"k": "v"}}, "memory_metadata_gin"),
        ({"user_id": "*", "categories": {"in": ["food"]}}, "memory_categories_gin"),
        ({"user_id": "*", "categories": {"contains": ["food"]}}, "memory_categories_gin"),
        ({"run_id": "r", "created_at": {"gte": "2024-01-01"}}, "memory_run_id_idx"),
    ],
)
def test_list_filters_are_index_backed(db, filters, index):
    from memories.selectors import memories_list

    plan = _plan(memories_list(filters=filters).query.sql_with_params())
    assert index in plan and "Seq Scan" not in plan


def _deep(depth: int, leaf: object) -> object:
    for _ in range(depth):
        leaf = {"k": leaf}
    return leaf


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v3/memories/add/", {"messages": [{"role": "user", "content": "a\x00b"}], "user_id": "a"}),
        ("/v3/memories/add/", {"messages": [{"role": "user", "content": "x"}], "user_id": "a\x00"}),
        ("/v3/memories/add/", {"messages": [{"role": "user", "content": "x"}], "user_id": "a", "metadata": {"k": "\x00"}}),
        ("/v3/memories/add/", {"messages": [{"role": "user", "content": "x"}], "user_id": "a", "metadata": _deep(60, "\x00")}),
        ("/v3/memories/", {"filters": {"user_id": "a\x00"}}),
        ("/v3/memories/", {"filters": {"user_id": "a", "metadata": {"k\x00": 1}}}),
        ("/v3/memories/?page=99999999999", {"filters": {"user_id": "a"}}),
        ("/v3/memories/search/", {"query": "x\x00", "filters": {"user_id": "a"}}),
        ("/v3/memories/search/", {"query": "x", "filters": {"user_id": "a"}, "threshold": "NaN"}),
    ],
)  # fmt: skip
def test_hostile_input_is_a_400_not_a_500(api, path, body):
    response = api.post(path, body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]
