"""The OpenAPI schema documents the answers every operation can give besides its own (config/schema.py): the
memory API is in it, a request without a key gets the 401 the schema lists, and the audit export's CSV is
described."""

import uuid

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

SCHEMA = SchemaGenerator().get_schema(request=None, public=True)
OPERATIONS = sorted(
    (method, path)
    for path, item in SCHEMA["paths"].items()
    for method in item
    if method in ("get", "post", "put", "delete")
)


def test_the_memory_api_is_in_the_schema():
    assert {
        "/v3/memories/add/",
        "/v3/memories/",
        "/v3/memories/search/",
        "/v1/memories/",
        "/v1/batch/",
    } <= set(SCHEMA["paths"])


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_a_request_without_a_key_gets_the_documented_401(db, method, path):
    concrete = path
    for name in ("request_id", "hold_id", "memory_id", "event_id", "store_id", "policy_id", "id"):
        concrete = concrete.replace("{" + name + "}", str(uuid.uuid4()))
    concrete = concrete.replace("{entity_type}", "user").replace("{name}", "someone").replace("{number}", "1")
    concrete = concrete.replace("{agent_id}", "agent-1")
    response = getattr(APIClient(), method)(concrete)
    assert response.status_code == 401, (path, response.status_code)
    assert "401" in SCHEMA["paths"][path][method]["responses"]


def test_the_audit_export_documents_its_csv():
    ok = SCHEMA["paths"]["/api/v1/audit/export/"]["get"]["responses"]["200"]
    assert {"application/json", "text/csv"} <= set(ok["content"])
