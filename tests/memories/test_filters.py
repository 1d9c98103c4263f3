"""Mem0 v2 filter grammar → Django Q, checked against real rows in PostgreSQL, and its refusals."""

import datetime

import pytest
from django.utils import timezone

from memories.filters import FilterError, filters_have_entity, filters_to_q
from memories.models import Memory
from memories.services import memories_add


@pytest.fixture
def rows(db):
    """Six memories named by their text; timestamps pinned so date filters are exact."""
    made = {}

    def put(name, created, **fields):
        (memory,) = memories_add(texts=[name], **fields)
        Memory.objects.filter(id=memory.id).update(created_at=created, updated_at=created)
        made[name] = memory.id

    utc = datetime.UTC
    put("a1", datetime.datetime(2024, 1, 10, 12, tzinfo=utc), user_id="alice", agent_id="coach",
        metadata={"topic": "food", "tags": ["veg", "spicy"], "note": "Likes Thai curry", "n": 3},
        categories=["food", "health"])  # fmt: skip
    put("a2", datetime.datetime(2024, 2, 1, 0, tzinfo=utc), user_id="alice", run_id="r1",
        metadata={"topic": "sport", "nested": {"level": 2}}, categories=["sport"])  # fmt: skip
    put("a3", datetime.datetime(2024, 2, 29, 23, 59, tzinfo=utc), user_id="alice", app_id="app",
        expiration_date=datetime.date(2030, 6, 1))  # fmt: skip
    put("b1", datetime.datetime(2024, 3, 1, tzinfo=utc), user_id="bob", agent_id="coach",
        metadata={"topic": "food"}, categories=["food"])  # fmt: skip
    put("c1", datetime.datetime(2024, 3, 2, tzinfo=utc), agent_id="solo", metadata={"topic": 5})
    put(
        "d1",
        datetime.datetime(2024, 3, 3, tzinfo=utc),
        user_id="dora",
        expiration_date=datetime.date(2024, 1, 1),
    )
    return made


def names(filters):
    return sorted(Memory.objects.filter(filters_to_q(filters)).values_list("text", flat=True))


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"user_id": "alice"}, ["a1", "a2", "a3"]),
        ({"user_id": {"eq": "bob"}}, ["b1"]),
        ({"user_id": {"in": ["bob", "dora"]}}, ["b1", "d1"]),
        ({"user_id": {"ne": "alice"}}, ["b1", "c1", "d1"]),
        ({"user_id": "*"}, ["a1", "a2", "a3", "b1", "d1"]),
        ({"run_id": "*"}, ["a2"]),
        ({"user_id": {"eq": "*"}}, ["a1", "a2", "a3", "b1", "d1"]),
        ({"user_id": {"ne": "*"}}, ["c1"]),
        ({"user_id": "alice", "agent_id": "coach"}, ["a1"]),
        ({"AND": [{"user_id": "alice"}, {"agent_id": "coach"}]}, ["a1"]),
        ({"OR": [{"user_id": "bob"}, {"agent_id": "solo"}]}, ["b1", "c1"]),
        ({"AND": [{"user_id": "*"}, {"NOT": [{"user_id": "alice"}]}]}, ["b1", "d1"]),
        ({"NOT": {"agent_id": "coach"}}, ["a2", "a3", "c1", "d1"]),
        ({"OR": [{"AND": [{"user_id": "alice"}, {"run_id": "r1"}]}, {"AND": [{"user_id": "bob"}]}]}, ["a2", "b1"]),
        ({"created_at": {"gte": "2024-02-01", "lte": "2024-02-29"}}, ["a2", "a3"]),
        ({"created_at": {"gt": "2024-02-01"}}, ["a3", "b1", "c1", "d1"]),
        ({"created_at": {"lt": "2024-02-01"}}, ["a1"]),
        ({"created_at": {"lt": "2024-02-01T00:00:01Z"}}, ["a1", "a2"]),
        ({"created_at": {"gte": "2024-03-02T00:00:00"}}, ["c1", "d1"]),
        ({"updated_at": {"lte": "2024-01-10"}}, ["a1"]),
        ({"expiration_date": {"gt": "2025-01-01"}}, ["a3"]),
        ({"expiration_date": {"lte": "2024-01-01T10:00:00Z"}}, ["d1"]),
        ({"metadata": {"topic": "food"}}, ["a1", "b1"]),
        ({"metadata": {"topic": 5}}, ["c1"]),
        ({"metadata": {"topic": "food", "n": 3}}, ["a1"]),
        ({"metadata": {"nested": {"level": 2}}}, ["a2"]),
        ({"metadata": {"topic": {"eq": "sport"}}}, ["a2"]),
        ({"metadata": {"topic": {"ne": "food"}}}, ["a2", "a3", "c1", "d1"]),
        ({"metadata": {"topic": {"in": ["sport", 5]}}}, ["a2", "c1"]),
        ({"metadata": {"tags": {"contains": "veg"}}}, ["a1"]),
        ({"metadata": {"note": {"contains": "Thai"}}}, ["a1"]),
        ({"metadata": {"note": {"contains": "thai"}}}, []),
        ({"metadata": {"eq": {"topic": "food"}}}, ["a1", "b1"]),
        ({"metadata": {"ne": {"topic": "food"}}}, ["a2", "a3", "c1", "d1"]),
        ({"metadata": {"contains": {"tags": ["spicy"]}}}, ["a1"]),
        ({"categories": {"in": ["sport", "health"]}}, ["a1", "a2"]),
        ({"categories": {"contains": ["food", "health"]}}, ["a1"]),
        ({"categories": {"contains": "food"}}, ["a1", "b1"]),
        ({"categories": ["food"]}, ["a1", "b1"]),
        ({}, ["a1", "a2", "a3", "b1", "c1", "d1"]),
    ],
)  # fmt: skip
def test_filter_selects_exactly(rows, filters, expected):
    assert names(filters) == expected


def test_memory_ids_filter(rows):
    assert names({"memory_ids": [str(rows["a1"]), str(rows["c1"])]}) == ["a1", "c1"]
    assert names({"memory_ids": {"in": [str(rows["b1"])]}}) == ["b1"]


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"foo": 1}, "Unknown filter key: foo"),
        ({"AND": [{"user_id": "a"}, {"bar": 1}]}, "Unknown filter key: bar"),
        ({"and": [{"user_id": "a"}]}, "Unknown filter key: and"),
        ({"created_at": {"xx": "2024-01-01"}}, "Unsupported operator 'xx' for field 'created_at'"),
        ({"created_at": {"eq": "2024-01-01"}}, "Unsupported operator 'eq' for field 'created_at'"),
        ({"user_id": {"gte": "a"}}, "Unsupported operator 'gte' for field 'user_id'"),
        ({"user_id": {"icontains": "a"}}, "Unsupported operator 'icontains' for field 'user_id'"),
        ({"categories": {"eq": "x"}}, "Unsupported operator 'eq' for field 'categories'"),
        ({"memory_ids": {"nin": []}}, "Unsupported operator 'nin' for field 'memory_ids'"),
        ({"created_at": {"gte": "yesterday"}}, "created_at.gte must be an ISO date"),
        ({"created_at": {"gte": 20240101}}, "created_at.gte must be an ISO date"),
        ({"created_at": {"gte": "2024-13-45"}}, "created_at.gte must be an ISO date"),
        ({"created_at": "2024-01-01"}, "created_at must be an operator object"),
        ({"user_id": 7}, "user_id must be a string"),
        ({"user_id": ""}, "user_id must be a non-empty string"),
        ({"user_id": None}, "user_id must be a string"),
        ({"user_id": {"in": "alice"}}, "user_id.in must be a non-empty list"),
        ({"user_id": {"in": []}}, "user_id.in must be a non-empty list"),
        ({"user_id": {"in": ["a", 3]}}, "user_id must be a non-empty string"),
        ({"user_id": {}}, "user_id must be a string"),
        ({"AND": {"user_id": "a"}, "OR": []}, "OR must be a non-empty list"),
        ({"OR": "user_id"}, "OR must be a non-empty list"),
        ({"NOT": [5]}, "each item of NOT must be a JSON object"),
        ({"metadata": "food"}, "metadata must be a non-empty JSON object"),
        ({"metadata": {}}, "metadata must be a non-empty JSON object"),
        ({"metadata": {"eq": {}}}, "metadata.eq must be a non-empty JSON object"),
        ({"metadata": {"k": {"in": "x"}}}, "metadata.k.in must be a non-empty list"),
        ({"metadata": {"k": {"contains": {"a": 1}}}}, "metadata.k.contains must be a string"),
        ({"categories": {"in": []}}, "categories.in must be a string or a non-empty list"),
        ({"categories": {"in": [1]}}, "categories.in must be a string or a non-empty list"),
        ({"categories": 3}, "categories must be a list or an operator object"),
        ({"memory_ids": ["not-a-uuid"]}, "memory_ids must hold valid UUIDs"),
        ({"memory_ids": [1]}, "memory_ids must hold valid UUIDs"),
        ({"memory_ids": "x"}, "memory_ids must be a non-empty list"),
        ("user_id=a", "filters must be a JSON object"),
        ([{"user_id": "a"}], "filters must be a JSON object"),
    ],
)  # fmt: skip
def test_bad_filters_raise_an_error_naming_the_problem(db, filters, message):
    with pytest.raises(FilterError) as caught:
        Memory.objects.filter(filters_to_q(filters)).count()
    assert message in str(caught.value)


def test_deep_nesting_is_refused_not_a_recursion_error(db):
    deep: dict = {"user_id": "a"}
    for _ in range(50):
        deep = {"AND": [deep]}
    with pytest.raises(FilterError, match="nested too deeply"):
        filters_to_q(deep)


@pytest.mark.parametrize(
    ("filters", "has_entity"),
    [
        ({"user_id": "a"}, True),
        ({"run_id": "*"}, True),
        ({"AND": [{"created_at": {"gte": "2024-01-01"}}, {"OR": [{"agent_id": {"in": ["x"]}}]}]}, True),
        ({"NOT": [{"app_id": "x"}]}, True),
        ({}, False),
        ({"metadata": {"user_id": "a"}}, False),
        ({"OR": [{"created_at": {"gte": "2024-01-01"}}, {"categories": ["x"]}]}, False),
        ("user_id", False),
    ],
)
def test_entity_rule_counts_an_entity_field_at_any_depth(filters, has_entity):
    assert filters_have_entity(filters) is has_entity


def test_date_bounds_are_whole_utc_days(rows):
    # a3 was created at 23:59 on Feb 29th: "lte Feb 29th" includes it, "lt Feb 29th" and "gt Feb 29th" do not.
    assert "a3" in names({"created_at": {"lte": "2024-02-29"}})
    assert "a3" not in names({"created_at": {"lt": "2024-02-29"}})
    assert "a3" not in names({"created_at": {"gt": "2024-02-29"}})
    assert timezone.is_aware(Memory.objects.get(text="a3").created_at)


@pytest.mark.parametrize(
    "filters",
    [
        {"user_id": "alice", "foo": {"bar": 1}},
        {"user_id": "alice", "created_at": {"gte": ["2024"]}},
        {"user_id": "alice", "metadata": {"k": {"in": []}}},
        {"user_id": {"in": [None]}},
        {"AND": [None]},
        {"user_id": "alice", "categories": {"contains": [None]}},
        {"user_id": "alice", "memory_ids": [None]},
    ],
)
def test_api_answers_400_never_500_for_bad_filter_values(api, filters):
    for path, extra in (("/v3/memories/", {}), ("/v3/memories/search/", {"query": "x"})):
        response = api.post(path, {"filters": filters, **extra}, format="json")
        assert response.status_code == 400, (path, response.content)
        assert response.json()["error"]
