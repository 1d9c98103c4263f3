"""No personal data in log lines: memory text and entity ids sent to the API never reach a log record."""

import logging
import uuid

import pytest

from config.logging import RedactPersonalDataFilter
from memories.engine import deletion_job_run
from memories.models import DeletionJob

CANARY_USER = f"canary-user-{uuid.uuid4().hex[:8]}"
CANARY_TEXT = f"canary-text-{uuid.uuid4().hex[:8]}"
NOISY = ("django.request", "django.server")  # log 4xx paths; every configured handler redacts them


def rendered(record: logging.LogRecord) -> str:
    """Everything a formatter could print: the message and every extra attribute."""
    return record.getMessage() + " " + " ".join(repr(v) for v in vars(record).values())


@pytest.fixture
def captured(caplog):
    caplog.set_level(logging.DEBUG)
    for name in NOISY:
        caplog.set_level(logging.DEBUG, logger=name)
    # Like every handler of settings.LOGGING, the capturing handler carries the redaction filter.
    caplog.handler.addFilter(RedactPersonalDataFilter())
    yield caplog
    caplog.handler.removeFilter(caplog.handler.filters[-1])


def test_adding_searching_and_deleting_by_entity_logs_no_personal_data(api, captured):
    # given: memories with canary text and a canary user id, through every write path
    body = {"messages": [{"role": "user", "content": f"{CANARY_TEXT} lives here"}], "user_id": CANARY_USER}
    added = api.post("/v3/memories/add/", body, format="json").json()["results"][0]
    api.post("/v1/memories/", body, format="json")
    api.put(f"/v1/memories/{added['id']}/", {"text": f"{CANARY_TEXT} moved"}, format="json")
    api.post(
        "/v3/memories/search/", {"query": CANARY_TEXT, "filters": {"user_id": CANARY_USER}}, format="json"
    )
    api.post("/v3/memories/", {"filters": {"user_id": CANARY_USER}}, format="json")
    api.get(f"/v1/memories/{added['id']}/history/")
    api.get("/v1/entities/")
    api.post("/v3/memories/", {"filters": {"user_id": CANARY_USER, "bad": CANARY_TEXT}}, format="json")  # 400

    # when: the entity delete (ok, then 404 once nothing is left), with the job run to its end
    ok = api.delete(f"/v2/entities/user/{CANARY_USER}/")
    deletion_job_run(job_id=ok.json()["event_id"])
    missing = api.delete(f"/v2/entities/user/{CANARY_USER}/")
    api.delete(f"/v1/memories/?user_id={CANARY_USER}")

    # then
    assert ok.status_code == 200 and missing.status_code == 404
    assert DeletionJob.objects.filter(status="SUCCEEDED").exists()
    assert captured.records, "the test must actually capture log records"
    assert any(r.name == "django.request" for r in captured.records)  # the 404 was logged …
    assert any(r.name.startswith("memories") for r in captured.records)  # … and so were our own lines
    for record in captured.records:
        line = rendered(record)
        assert CANARY_USER not in line, (record.name, line)
        assert CANARY_TEXT not in line, (record.name, line)
