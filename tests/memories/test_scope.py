"""The deletion scope (memories/scope.py): NUL characters, which PostgreSQL cannot store or compare, are refused
as bad input naming the key, before any query or row is written."""

import pytest
from django.db import transaction

from memories.engine import deletion_job_create
from memories.models import DeletionJob, Memory
from memories.scope import ScopeError, scope_queryset, validate_scope
from memories.services import legal_hold_place, memories_add


def _nested(depth: int, leaf: object) -> dict[str, object]:
    value: object = leaf
    for _ in range(depth):
        value = {"k": value}
    assert isinstance(value, dict)
    return value


@pytest.mark.parametrize(
    ("scope", "key"),
    [
        ({"user_id": "a\x00b"}, "user_id"),
        ({"user_id": ["alice", "b\x00"]}, "user_id"),
        ({"agent_id": "\x00"}, "agent_id"),
        ({"user_id": "alice", "run_id": ["r\x00"]}, "run_id"),
        ({"app_id": "app\x00"}, "app_id"),
        ({"metadata": {"k": "v\x00"}}, "metadata"),
        ({"metadata": {"k\x00": 1}}, "metadata"),
        ({"metadata": {"k": ["ok", {"deeper": "x\x00"}]}}, "metadata"),
        ({"metadata": _nested(200, "x\x00")}, "metadata"),
    ],
)
def test_validate_scope_refuses_nul_characters_naming_the_key(scope, key):
    with pytest.raises(ScopeError) as refused:
        validate_scope(scope)
    assert str(refused.value).startswith(f"{key} ") and "NUL" in str(refused.value)


def test_the_same_scopes_without_nul_are_accepted():
    assert validate_scope({"user_id": ["b", "alice"], "metadata": _nested(200, "x")})["user_id"] == [
        "alice",
        "b",
    ]


def test_engine_and_holds_refuse_a_nul_scope_before_writing_anything(db):
    # given: a memory the scope would otherwise be compared against
    memories_add(texts=["a fact"], user_id="alice")
    # when / then: no query reaches PostgreSQL with the NUL, no job or hold row is written
    with pytest.raises(ScopeError, match="user_id"), transaction.atomic():
        deletion_job_create(kind="filter", scope={"user_id": "alice\x00"}, requested_by="t", enqueue=False)
    with pytest.raises(ScopeError, match="metadata"), transaction.atomic():
        legal_hold_place(scope={"metadata": {"k": "\x00"}}, reason="art17_3_e", note="", placed_by="t")
    with pytest.raises(ScopeError, match="user_id"):
        scope_queryset({"user_id": "alice\x00"})
    assert not DeletionJob.objects.exists()
    assert not Memory.objects.filter(legal_hold__isnull=False).exists()
