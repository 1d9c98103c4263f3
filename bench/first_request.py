"""What a user's first request meets: `DELETE /v1/memories/?user_id=` through the public HTTP API, answered by a
Celery worker that has just started (cold: its first job) and then by the same worker again (warm: its second job).

The web server and the worker are started as `make run` starts them (scripts/run.sh: gunicorn with 2 processes of
4 threads, `celery worker --concurrency 2`), on the bench database and a queue of their own. The web server is
warmed by a few authenticated requests first, so the figures are the worker's; the worker gets its first job right
after it reports ready. Each figure is the client's: the DELETE sent → `GET /v1/event/<event_id>/` (polled every
10 ms) answering SUCCEEDED; the job's own timestamps give creation → a worker starting it and creation → finished.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
POLL_SECONDS = 0.01
WEB_WARM_REQUESTS = 10


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _process(
    args: list[str], env: dict[str, str], log: Path, ready: str | None
) -> Iterator[subprocess.Popen]:
    """A child in a process group of its own, its output in `log`; waits for `ready` in that output when given.
    Stopped with SIGTERM (gunicorn's graceful stop, Celery's warm shutdown) and waited for."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 60
        while ready is not None and ready not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{args[0]} did not start:\n" + log.read_text(errors="replace")[-2000:])
            time.sleep(0.05)
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _wait_http(client: httpx.Client, deadline: float) -> None:
    while True:
        with contextlib.suppress(httpx.TransportError):
            if client.get("/v1/ping/").status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError("the bench web server did not answer /v1/ping/")
        time.sleep(0.1)


def _delete_until_succeeded(client: httpx.Client, user_id: str) -> tuple[str, float]:
    """DELETE /v1/memories/?user_id= → poll /v1/event/<id>/ until SUCCEEDED; returns (event id, seconds)."""
    started = time.perf_counter()
    answer = client.delete("/v1/memories/", params={"user_id": user_id})
    answer.raise_for_status()
    event_id = answer.json()["event_id"]
    deadline = time.monotonic() + 300
    while True:
        event = client.get(f"/v1/event/{event_id}/")
        event.raise_for_status()
        status = event.json()["status"]
        if status == "SUCCEEDED":
            return event_id, time.perf_counter() - started
        if status not in ("PENDING", "RUNNING") or time.monotonic() > deadline:
            raise RuntimeError(f"event {event_id} ended {status}")
        time.sleep(POLL_SECONDS)


def measure(*, dsn: str, env: dict[str, str], users: tuple[str, str], log_dir: Path) -> list[dict]:
    """Cold then warm: one dict per user with the client's seconds and the job's timestamps (seconds)."""
    run = f"bench{os.getpid()}first"
    env = {
        **env,
        "CELERY_QUEUE": f"erasure-{run}",
        "CELERY_KEY_PREFIX": f"{run}:",
        "CACHE_KEY_PREFIX": f"erasure-{run}",
    }
    key = subprocess.run([sys.executable, "manage.py", "create_api_key", "--name", "bench-first-request"], cwd=ROOT,
                         env=env, check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
    port = _free_port()
    bin_dir = Path(sys.executable).parent
    web_args = [str(bin_dir / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2",
                "--threads", "4", "--log-level", "warning", "--graceful-timeout", "5"]  # fmt: skip
    worker_args = [str(bin_dir / "celery"), "-A", "config", "worker", "-l", "INFO", "--concurrency", "2",
                   "-n", f"{run}@{socket.gethostname()}"]  # fmt: skip
    results = []
    with (
        _process(web_args, env, log_dir / f"erasure-{run}-web.log", None),
        httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Token {key}"}
        ) as client,
    ):
        _wait_http(client, time.monotonic() + 60)
        for _ in range(WEB_WARM_REQUESTS):  # new connections: both web processes serve some
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=client.headers) as one:
                one.get("/v1/ping/").raise_for_status()
        with _process(worker_args, env, log_dir / f"erasure-{run}-worker.log", "ready."):
            for user in users:
                event_id, seconds = _delete_until_succeeded(client, user)
                results.append({"user": user, "event_id": event_id, "seconds": seconds})
    with psycopg.connect(dsn) as conn:
        for result in results:
            row = conn.execute(
                "SELECT extract(epoch FROM started_at - created_at), extract(epoch FROM finished_at - created_at),"
                " deleted_count, status FROM memories_deletionjob WHERE id = %s",
                [result["event_id"]],
            ).fetchone()
            assert row is not None
            pickup, job_seconds, deleted, status = row
            result.update(
                pickup=float(pickup), job_seconds=float(job_seconds), deleted=deleted, status=status
            )
    return results
