"""A second live instance of this service — its own database, gunicorn web server and Celery worker — reached over
real HTTP, as a Mem0-compatible store (the `mem0_platform` connector's tests), and a small fault proxy in front of
it that answers 429 / 5xx, drops connections or stalls calls on demand, then delegates.

`remote_mem0` is session-scoped (one instance per test run, a few seconds to start); tests keep to their own
synthetic subjects, so they never see each other's memories.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _admin_dsn() -> str:
    db = settings.DATABASES["default"]
    return f"postgresql://{db.get('USER') or 'postgres'}@{db.get('HOST') or 'localhost'}:{db.get('PORT') or 5432}/postgres"


class RemoteService:
    """The second instance. `url` is its base URL, `api_key` a memory-store key of its own."""

    def __init__(self) -> None:
        run = os.environ.get("ERASURE_TEST_RUN", f"t{os.getpid()}") + "r"
        self.database = f"test_erasure_{run}"
        db = settings.DATABASES["default"]
        self.database_url = (
            f"postgresql://{db.get('USER') or 'postgres'}@{db.get('HOST') or 'localhost'}:{db.get('PORT') or 5432}"
            f"/{self.database}"
        )
        var_dir = Path(f"/tmp/erasure-{run}")
        var_dir.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "ERASURE_TEST_RUN": run,
            "ERASURE_TEST_DB": self.database,
            "DATABASE_URL": self.database_url,
            "CELERY_QUEUE": f"erasure-{run}",
            "CELERY_KEY_PREFIX": f"{run}:",
            "CACHE_KEY_PREFIX": f"erasure-{run}",
            "VAR_DIR": str(var_dir),
        }
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.database}"')
        self._manage("migrate", "--noinput", "-v", "0")
        out = self._manage("create_api_key", "--name", "remote-test")
        self.api_key = next(word for word in out.split() if word.startswith("m0-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._spawn(
            "web",
            [sys.executable, "-m", "gunicorn", "config.wsgi:application", "-b", f"127.0.0.1:{self.port}",
             "-w", "1", "--threads", "8", "--timeout", "120"],
        )  # fmt: skip
        self._spawn(
            "worker",
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", self.env["CELERY_QUEUE"], "-c", "1",
             "-n", f"remote-{os.getpid()}@%h", "--without-gossip", "--without-mingle", "-l", "INFO"],
        )  # fmt: skip
        self._wait_ready()

    def _manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def _spawn(self, name: str, cmd: list[str]) -> None:
        log = Path(self.env["VAR_DIR"]) / f"remote-{name}-{time.time_ns()}.log"
        self.logs.append(log)
        handle = open(log, "w")  # noqa: SIM115 - closed with the process
        self.procs.append(
            subprocess.Popen(
                cmd, cwd=ROOT, env=self.env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
            )
        )

    def _wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        web_ok = worker_ok = False
        while time.monotonic() < deadline:
            for proc, log in zip(self.procs, self.logs, strict=True):
                if proc.poll() is not None:
                    raise RuntimeError(f"remote {log.name} exited:\n{log.read_text()[-3000:]}")
            if not web_ok:
                try:
                    web_ok = (
                        httpx.get(f"{self.url}/v1/ping/", headers=self.headers, timeout=2).status_code == 200
                    )
                except httpx.HTTPError:
                    pass
            worker_ok = worker_ok or "ready." in self.logs[1].read_text(errors="replace")
            if web_ok and worker_ok:
                return
            time.sleep(0.2)
        raise RuntimeError("the remote instance did not start in time")

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.api_key}"}

    def add(self, *, user_id: str, count: int, **fields: Any) -> list[str]:
        """Adds `count` memories through the remote's API (one per message); returns their ids."""
        ids: list[str] = []
        for start in range(0, count, 100):
            n = min(100, count - start)
            body = {"messages": [{"role": "user", "content": f"fact {start + i}"} for i in range(n)],
                    "user_id": user_id, "infer": False, **fields}  # fmt: skip
            response = httpx.post(f"{self.url}/v1/memories/", json=body, headers=self.headers, timeout=60)
            assert response.status_code == 200, response.text
            ids += [row["id"] for row in response.json()["results"]]
        return ids

    def ids(self, **filters: Any) -> set[str]:
        """The ids of the remote's memories matching these entity filters (all pages)."""
        found: set[str] = set()
        page = 1
        while True:
            response = httpx.post(
                f"{self.url}/v3/memories/",
                params={"page": page, "page_size": 200},
                json={"filters": {"AND": [{k: v} for k, v in filters.items()]}, "show_expired": True},
                headers=self.headers,
                timeout=60,
            )
            assert response.status_code == 200, response.text
            data = response.json()
            found |= {row["id"] for row in data["results"]}
            if not data["next"]:
                return found
            page += 1

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=20)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    os.killpg(proc.pid, signal.SIGKILL)
        with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')


@pytest.fixture(scope="session")
def remote_mem0() -> Iterator[RemoteService]:
    service = RemoteService()
    try:
        yield service
    finally:
        service.stop()


# --- the fault proxy -------------------------------------------------------------------------------------------

Rule = Callable[[str, str], "dict[str, Any] | None"]


class FaultProxy:
    """Forwards every call to `upstream` unless a rule (given method and path) returns an action:
    {"status": 429, "headers": {"Retry-After": "1"}} answers that; {"drop": True} closes the connection without an
    answer; {"stall": event, "forward": True} forwards, then holds the answer until the event is set (or for ever);
    rules are tried in order and may count calls themselves. `calls` records (method, path) of every call."""

    def __init__(self, upstream: str):
        self.upstream = urlsplit(upstream)
        self.rules: list[Rule] = []
        self.calls: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = urlsplit(self.path).path
                with proxy.lock:
                    proxy.calls.append((self.command, path))
                    action = next(
                        (a for rule in proxy.rules if (a := rule(self.command, path)) is not None), None
                    )
                action = action or {}
                if action.get("drop"):
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if "status" in action:
                    payload = json.dumps({"error": "injected fault"}).encode()
                    self.send_response(action["status"])
                    for key, value in (action.get("headers") or {}).items():
                        self.send_header(key, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=120)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                upstream = conn.getresponse()
                data = upstream.read()
                conn.close()
                if action.get("stall") is not None:
                    action["stall"].wait()
                self.send_response(upstream.status)
                for key, value in upstream.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _guarded(self) -> None:
                try:
                    self._handle()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the caller was killed or gave up: nothing to answer

            do_GET = do_POST = do_DELETE = do_PUT = _guarded  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def calls_to(self, method: str, prefix: str) -> int:
        with self.lock:
            return sum(1 for m, p in self.calls if m == method and p.startswith(prefix))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fault_proxy(remote_mem0: RemoteService) -> Iterator[FaultProxy]:
    proxy = FaultProxy(remote_mem0.url)
    yield proxy
    proxy.close()


def first_n(n: int, action: dict[str, Any], method: str | None = None, prefix: str = "/") -> Rule:
    """A rule: the first n calls (of that method, under that path) get `action`."""
    left = {"n": n}

    def rule(m: str, path: str) -> dict[str, Any] | None:
        if (method is None or m == method) and path.startswith(prefix) and left["n"] > 0:
            left["n"] -= 1
            return action
        return None

    return rule


def synthetic_user(label: str = "subject") -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}"
