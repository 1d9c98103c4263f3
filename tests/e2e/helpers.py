"""Helpers of the end-to-end fault and residue tests: canary strings, fast bulk memories, an erasure request driven
through the Erasure API, and a private redis-server that a test may kill without touching the shared one."""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from typing import Any

import redis
from django.db import connection

from memories.ids import uuid7
from tests.conftest import wait_for

BASE = "/api/v1/erasure-requests/"


def canary(label: str = "canary") -> str:
    """A string that exists nowhere else: any place it turns up in was written by this test."""
    return f"{label}-{secrets.token_hex(10)}"


def bulk_memories(
    *, user_id: str, count: int, agent_id: str | None = None, run_id: str | None = None, text: str = "fact"
) -> list[uuid.UUID]:
    """Inserts `count` memories as memories_add writes them (UUIDv7 ids, no history row: the ADD event is
    derived) in one set-based statement; returns their ids, ascending. Bypasses write blocks: set-up only."""
    ids = sorted(uuid7() for _ in range(count))
    with connection.cursor() as cur:
        cur.execute(
            """
            INSERT INTO memories_memory (id, text, hash, user_id, agent_id, app_id, run_id, metadata,
                                         categories, immutable, has_history, created_at, updated_at)
            SELECT src.id, src.t, md5(src.t), %s, %s, NULL, %s, NULL, '{}', false, false, now(), now()
            FROM (SELECT i, %s || ' ' || g AS t FROM unnest(%s::uuid[]) WITH ORDINALITY AS u(i, g)) AS src(id, t)
            """,
            [user_id, agent_id, run_id, text, ids],
        )
        assert cur.rowcount == count
    return ids


def history_rows(memory_ids: list[uuid.UUID]) -> int:
    """How many memories_history rows these memories have."""
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM memories_history WHERE memory_id = ANY(%s::uuid[])", [memory_ids])
        return int(cur.fetchone()[0])


def tombstone_counts(memory_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """For each of these ids that is in any MemoryTombstone, how many times it appears there (all tombstones of
    all jobs): 1 for a memory deleted once, nothing for one never deleted."""
    with connection.cursor() as cur:
        cur.execute(
            """SELECT u, count(*) FROM memories_tombstone t, unnest(t.ids) AS u
               WHERE t.ids && %s::uuid[] AND u = ANY(%s::uuid[]) GROUP BY u""",
            [memory_ids, memory_ids],
        )
        return {memory_id: int(n) for memory_id, n in cur.fetchall()}


def request_tombstone_ids(reference: str) -> list[uuid.UUID]:
    """Every id in the tombstones of an erasure request's jobs (its deletion job and any final sweep), ascending,
    with repeats kept (a repeat is a memory deleted twice)."""
    with connection.cursor() as cur:
        cur.execute(
            """SELECT u FROM memories_tombstone t JOIN memories_deletionjob j ON j.id = t.job_id,
                      unnest(t.ids) AS u
               WHERE j.kind = 'erasure' AND j.requested_by = %s ORDER BY u""",
            [reference],
        )
        return [row[0] for row in cur.fetchall()]


def request_through_api(
    staff_api: Any, *, user_ids: list[str], email: str = "", suppress: bool = False, approve: bool = True
) -> tuple[str, dict[str, Any]]:
    """create → verify identity → scope (→ approve) through the Erasure API. Returns (detail url, scoped detail)."""
    subject: dict[str, Any] = {"user_ids": user_ids}
    if email:
        subject["email"] = email
    response = staff_api.post(
        BASE, {"regulation": "gdpr", "subject": subject, "suppress": suppress}, format="json"
    )
    assert response.status_code == 201, response.content
    url = f"{BASE}{response.json()['id']}/"
    assert staff_api.post(url + "verify-identity/", {"note": "id checked"}, format="json").status_code == 200
    response = staff_api.post(url + "scope/", {}, format="json")
    assert response.status_code == 200 and response.json()["state"] == "scoped", response.content
    scoped = response.json()
    if approve:
        response = staff_api.post(url + "approve/", {}, format="json")
        assert response.status_code == 200, response.content
    return url, scoped


def wait_closed(staff_api: Any, url: str, timeout: float = 120) -> dict[str, Any]:
    """Waits until the request is verified (or failed: the caller's assertion then shows the detail)."""
    return wait_for(
        lambda: (d := staff_api.get(url).json())["state"] in ("verified", "failed", "rejected") and d,
        timeout=timeout,
        interval=0.3,
        message=f"{url} to be verified",
    )


def free_port(start: int = 6400, span: int = 1000) -> int:
    for _ in range(50):
        port = start + secrets.randbelow(span)
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError("no free port for a private redis-server")


class RedisServer:
    """A private, non-persistent redis-server on a spare port (in a temp dir), for tests that kill Redis.
    The shared Redis on 6379 is never touched."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="erasure-redis-")
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        cmd = [
            shutil.which("redis-server") or "redis-server",
            "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", self.dir, "--logfile", os.path.join(self.dir, "redis.log"),
        ]  # fmt: skip
        self.proc = subprocess.Popen(cmd, start_new_session=True)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        wait_for(lambda: _pings(client), timeout=15, interval=0.05, message="private redis-server")

    def kill(self) -> None:
        """SIGKILL: no save, no shutdown; everything it held is gone."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def sleep_until(predicate: Any, timeout: float, interval: float = 0.02) -> Any:
    """Like wait_for with a short interval, for catching a job mid-run."""
    return wait_for(predicate, timeout=timeout, interval=interval, message="the job to be mid-run")
