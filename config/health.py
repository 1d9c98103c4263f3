"""GET /healthz: database, Redis and the number of live Celery workers (no auth)."""

import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse


def healthz(request):
    body: dict[str, object] = {}
    ok = True
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
        body["database"] = "ok"
    except Exception:
        body["database"] = "unreachable"
        ok = False
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
        client.ping()
        body["redis"] = "ok"
    except Exception:
        body["redis"] = "unreachable"
        ok = False
    workers = 0
    if body["redis"] == "ok":
        from config.celery import app

        try:
            replies = app.control.ping(timeout=0.5) or []
            workers = len(replies)
        except Exception:
            workers = 0
    body["workers"] = workers
    return JsonResponse(body, status=200 if ok else 503)
