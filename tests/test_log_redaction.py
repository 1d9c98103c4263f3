"""No personal data in the application log when a write fails in the database: the traceback of the failure keeps
its frames and exception types, but not the messages in which PostgreSQL quotes the failing row."""

import logging

import pytest
from django.db import connection
from pythonjsonlogger.json import JsonFormatter
from rest_framework.test import APIClient

from config.logging import RedactPersonalDataFilter

CANARY_TEXT = "canary-text-5120"
CANARY_USER = "canary-user-5120"
CANARY_META = "canary-meta-5120"


@pytest.fixture
def failing_insert(db):
    """A constraint that refuses the canary text: a real database error on a real INSERT of the memory."""
    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE memories_memory ADD CONSTRAINT refuse_canary CHECK (text NOT LIKE 'canary%%') NOT VALID"
        )


def test_a_database_failure_on_add_logs_a_traceback_without_the_memory(api_key, failing_insert, caplog):
    # given: the application's log pipeline (the redaction filter, then the JSON formatter)
    caplog.set_level(logging.ERROR)
    caplog.handler.addFilter(RedactPersonalDataFilter())
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_key}")

    # when: the INSERT fails in PostgreSQL
    response = client.post(
        "/v3/memories/add/",
        {
            "messages": [{"role": "user", "content": f"{CANARY_TEXT} lives in Paris"}],
            "user_id": CANARY_USER,
            "metadata": {"city": CANARY_META},
        },
        format="json",
    )

    # then: a 500 logged with its traceback, and neither the text, the user id nor the metadata in the line
    assert response.status_code == 500
    [record] = [r for r in caplog.records if r.name == "django.request"]
    line = JsonFormatter("%(levelname)s %(name)s %(message)s").format(record)
    assert "IntegrityError" in line and "memories_add" in line  # still a useful traceback
    for canary in (CANARY_TEXT, CANARY_USER, CANARY_META):
        assert canary not in line
