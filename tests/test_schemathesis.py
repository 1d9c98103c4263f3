"""Property-based fuzzing of every operation in the OpenAPI schema (/api/schema/) against the Django app as a WSGI
app, with a privacy-team key: valid and invalid inputs alike must never produce a 5xx. Each case is sent twice:
as generated (its ids mostly match nothing → 404), and with its id replaced by a real erasure request or legal hold
so that the action endpoints see fuzzed bodies for requests in every state.

The schema is whatever drf-spectacular generates now, so operations that land later (the Mem0 memory API) are
fuzzed too without changing this file.
"""

import itertools
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections, transaction
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings

from config.wsgi import application
from erasure.models import State
from erasure.services import legal_hold_create
from memories.services import api_key_create, memories_add
from tests.erasure.factories import request_in_state

MAX_EXAMPLES = 25

schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
schema.config.generation.update(
    max_examples=MAX_EXAMPLES, deterministic=True, modes=["positive", "negative"], database="none"
)


@pytest.fixture
def keep_connection() -> Any:
    """The WSGI app runs inside the test's transaction; like Django's own test client, stop the request signals
    from closing the database connection between requests."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def world(db: Any, keep_connection: Any) -> dict[str, Any]:
    """A staff key and objects to aim at: requests in every state (three of each, since actions move them) and
    legal holds."""
    _key, raw = api_key_create(name="fuzz", is_staff=True)
    memories_add(texts=["fuzz fact"] * 3, user_id="fuzz-subject", agent_id="bot")
    requests = [
        request_in_state(state=state, user_ids=["fuzz-subject"]) for state in State.values for _ in range(3)
    ]
    holds = [
        legal_hold_create(scope={"user_id": "fuzz-subject"}, reason="art17_3_e", actor="fuzz")
        for _ in range(3)
    ]
    return {
        "headers": {"Authorization": f"Token {raw}"},
        "request_ids": itertools.cycle([str(r.id) for r in requests]),
        "hold_ids": itertools.cycle([str(h.id) for h in holds]),
    }


def _send(case: Any, headers: dict[str, str]) -> Any:
    # A 5xx in one case must not poison the test transaction for the next one.
    with transaction.atomic():
        response = case.call(app=application, headers=headers)
    case.validate_response(
        response,
        checks=[schemathesis.checks.not_a_server_error, schemathesis.checks.status_code_conformance],
    )
    return response


@schema.parametrize()
@settings(suppress_health_check=list(HealthCheck), deadline=None)
def test_no_operation_answers_a_server_error(case: Any, world: dict[str, Any]) -> None:
    headers = world["headers"]
    _send(case, headers)
    params = case.path_parameters or {}
    aimed = dict(params)
    if "request_id" in aimed:
        aimed["request_id"] = next(world["request_ids"])
    if "hold_id" in aimed:
        aimed["hold_id"] = next(world["hold_ids"])
    if aimed != params:
        case.path_parameters = aimed
        _send(case, headers)


# Inputs the generator rarely builds (the scopes are free-form JSON in the schema), found by probing: PostgreSQL
# cannot store NUL in text or jsonb, so these used to fail in the database with a 500.
NUL_CASES = [
    ("/api/v1/legal-holds/", {"scope": {"user_id": "a\x00b"}, "reason": "art17_3_e"}, "scope"),
    ("/api/v1/legal-holds/", {"scope": {"metadata": {"k": "a\x00b"}}, "reason": "art17_3_e"}, "scope"),
    ("/api/v1/legal-holds/", {"scope": {"metadata": {"k\x00": 1}}, "reason": "art17_3_e"}, "scope"),
    ("/api/v1/legal-holds/", {"scope": {"user_id": "u"}, "reason": "art17_3_e", "note": "a\x00"}, "note"),
    (
        "/api/v1/erasure-requests/",
        {"regulation": "gdpr", "subject": {"user_ids": ["u"]}, "scope": {"metadata": {"k": ["a\x00"]}}},
        "scope",
    ),
    (
        "/api/v1/erasure-requests/",
        {"regulation": "gdpr", "subject": {"user_ids": ["u"]}, "scope": {"metadata": {"k\x00": "a"}}},
        "scope",
    ),
    ("/api/v1/erasure-requests/", {"regulation": "gdpr", "subject": {"user_ids": ["a\x00"]}}, "subject"),
]


@pytest.mark.parametrize(("path", "body", "field"), NUL_CASES)
def test_nul_characters_are_refused_with_a_400_naming_the_field(staff_api, path, body, field):
    response = staff_api.post(path, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
