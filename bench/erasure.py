"""Drives erasure requests through the real lifecycle against DATABASE_URL and prints JSON timings (one line per
command). The services are called directly in this process (not over HTTP); a Celery worker started by the parent
(`-c 1`, the bench's queue) runs the deletion job, the deleted receiver and the verification task.

    python -m bench.erasure big USERS WARM    one request per user of USERS (comma-separated), one after the
                                              other, after a warm-up request for WARM: create, verify identity,
                                              scope (timed each), then approve → `verified` (polled every 10 ms);
                                              prints one JSON object per request
    python -m bench.erasure small PREFIX N WORKER
                                              N requests for PREFIX-0 … PREFIX-(N-1): the worker WORKER stops
                                              consuming, all N are created, verified, scoped and approved, then the
                                              worker consumes again and the time until all N are `verified` is taken (polled every
                                              100 ms)
"""

import json
import os
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
os.environ.setdefault("ERASURE_QUIET_DEV_KEY", "1")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count  # noqa: E402

from config.celery import app  # noqa: E402
from erasure import services  # noqa: E402
from erasure.models import ErasureRequest, State  # noqa: E402

ACTOR = "bench"


def _submit(user: str) -> tuple[ErasureRequest, list[float]]:
    """create → verify identity → scope, each timed; returns the scoped request."""
    marks = [time.perf_counter()]
    request, _ = services.erasure_request_create(
        regulation="gdpr", user_ids=[user], channel="api", actor=ACTOR
    )
    marks.append(time.perf_counter())
    request = services.erasure_request_confirm_identity(request=request, actor=ACTOR, note="bench")
    marks.append(time.perf_counter())
    request = services.erasure_request_scope(request=request, actor=ACTOR)
    marks.append(time.perf_counter())
    return request, [b - a for a, b in zip(marks, marks[1:], strict=False)]


def _wait_verified(ids: list, timeout: float, poll: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        rows = ErasureRequest.objects.filter(id__in=ids).order_by().values("state").annotate(n=Count("id"))
        states = {row["state"]: row["n"] for row in rows}
        if states.get(State.VERIFIED, 0) == len(ids):
            return
        if states.get(State.FAILED):
            raise RuntimeError(f"erasure requests failed: {states}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"erasure requests not verified in {timeout} s: {states}")
        time.sleep(poll)


def warm(user: str) -> None:
    """A small request through the same worker and this client first: the figures are a running service's (client
    connected to the broker, worker to the database), not a fresh process's one-off connection set-up."""
    request, _ = _submit(user)
    services.erasure_request_approve(request=request, actor=ACTOR)
    _wait_verified([request.id], timeout=120, poll=0.01)


def big(user: str) -> dict:
    request, (create, identity, scope) = _submit(user)
    with connection.cursor() as cur:
        cur.execute("CHECKPOINT")  # as before each engine and raw delete: every measured delete starts alike
    started = time.perf_counter()
    request = services.erasure_request_approve(request=request, actor=ACTOR)
    approved = time.perf_counter()
    _wait_verified([request.id], timeout=600, poll=0.01)
    seconds = time.perf_counter() - started
    request.refresh_from_db()
    job = request.deletion_job
    assert job is not None
    return {
        "create": create,
        "identity": identity,
        "scope": scope,
        "approve_call": approved - started,
        "observed": seconds,
        "seconds": (request.verified_at - request.approved_at).total_seconds(),
        "scoped_total": request.scoped_total,
        "deleted": request.deleted_count,
        "history_purged": request.history_purged_count,
        "held": request.held_count,
        "final_sweep": request.verification.get("final_sweep_deleted"),
        "pseudonymised": request.pseudonymised_at is not None and request.subject_user_ids == [],
        "job_seconds": (job.finished_at - job.created_at).total_seconds(),
        "verify_seconds": (request.verified_at - request.deleted_at).total_seconds(),
        "batches": job.batches,
    }


def small(prefix: str, n: int, worker: str) -> dict:
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    app.control.cancel_consumer(queue, destination=[worker], reply=True, timeout=10)
    started = time.perf_counter()
    ids, steps = [], [0.0, 0.0, 0.0, 0.0]
    for i in range(n):
        request, timings = _submit(f"{prefix}-{i}")
        t = time.perf_counter()
        services.erasure_request_approve(request=request, actor=ACTOR)
        for k, v in enumerate([*timings, time.perf_counter() - t]):
            steps[k] += v
        assert request.scoped_total > 0
        ids.append(request.id)
    submitted = time.perf_counter() - started
    reply = app.control.add_consumer(queue, destination=[worker], reply=True, timeout=10)
    assert reply, "the bench worker did not answer add_consumer"
    resumed = time.perf_counter()
    _wait_verified(ids, timeout=1800, poll=0.1)
    drained = time.perf_counter() - resumed
    rows = ErasureRequest.objects.filter(id__in=ids)
    deleted = sum(rows.values_list("deleted_count", flat=True))
    scoped = sum(rows.values_list("scoped_total", flat=True))
    return {"n": n, "submit_seconds": submitted, "steps": steps, "seconds": drained, "deleted": deleted,
            "scoped": scoped, "pseudonymised": rows.filter(pseudonymised_at__isnull=False).count()}  # fmt: skip


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "big":
        warm(args[1])
        for user in args[0].split(","):
            print(json.dumps(big(user)), flush=True)
    else:
        print(json.dumps(small(args[0], int(args[1]), args[2])), flush=True)
