"""GET /healthz against the real PostgreSQL, Redis and Celery worker; 503 naming the part that fails."""

import socket

import pytest
from django.db import connection
from django.test import Client


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_healthz_reports_database_and_redis_ok_without_auth(db):
    response = Client().get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["database"] == "ok" and body["redis"] == "ok"
    assert isinstance(body["workers"], int) and body["workers"] >= 0


@pytest.mark.worker
def test_healthz_counts_a_running_worker(start_worker):
    start_worker("health")
    body = Client().get("/healthz").json()
    assert body["workers"] >= 1


def test_healthz_answers_503_naming_redis_when_it_is_unreachable(db, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    response = Client().get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["redis"] != "ok" and body["database"] == "ok" and body["workers"] == 0


@pytest.mark.django_db(transaction=True)
def test_healthz_answers_503_naming_the_database_when_it_is_unreachable():
    original = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = closed_port()
    try:
        response = Client().get("/healthz")
    finally:
        connection.close()
        connection.settings_dict["PORT"] = original
    assert response.status_code == 503
    body = response.json()
    assert body["database"] != "ok" and body["redis"] == "ok"


def test_the_home_page_links_the_form_the_console_and_the_docs(client, db):
    html = client.get("/").content.decode()
    for link in ('href="/privacy/request/"', 'href="/privacy-team/"', 'href="/api/docs/"', 'href="/healthz"'):
        assert link in html
