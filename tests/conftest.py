"""Shared fixtures: API clients with real keys, a real Celery worker process, a real headless Chromium.

Each test run has its own database, Celery queue and Redis key prefix (config/settings/test.py), so several runs
on one machine never see each other's work.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.test import APIClient

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def api_key(db):
    from memories.services import api_key_create

    _key, raw = api_key_create(name="test")
    return raw


@pytest.fixture
def staff_api_key(db):
    from memories.services import api_key_create

    _key, raw = api_key_create(name="staff-test", is_staff=True)
    return raw


@pytest.fixture
def api(api_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_key}")
    return client


@pytest.fixture
def staff_api(staff_api_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {staff_api_key}")
    return client


def test_database_url() -> str:
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    host = db.get("HOST") or "localhost"
    port = db.get("PORT") or 5432
    return f"postgresql://{user}@{host}:{port}/{db['NAME']}"


class WorkerProcess:
    """A real `celery worker` subprocess on this run's test database and queue."""

    def __init__(self, name: str, extra_env: dict[str, str] | None = None, beat: bool = False):
        self.name = name
        self.log_path = Path(settings.VAR_DIR) / f"worker-{name}-{time.time_ns()}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = os.environ.copy()
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "config.settings.test",
                "DATABASE_URL": test_database_url(),
                "ERASURE_TEST_DB": settings.DATABASES["default"]["NAME"],
            }
        )
        env.update(extra_env or {})
        cmd = [
            sys.executable, "-m", "celery", "-A", "config", "worker",
            "-Q", settings.CELERY_TASK_DEFAULT_QUEUE, "-c", "1", "-n", f"{name}-{os.getpid()}@%h",
            "--without-gossip", "--without-mingle", "-l", "INFO",
        ]  # fmt: skip
        if beat:
            cmd += ["-B", "-s", str(self.log_path.with_suffix(".beat"))]
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)  # fmt: skip
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log_path.read_text()[-3000:]}")
            if "ready." in self.log_path.read_text(errors="replace"):
                return
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready in {timeout}s:\n{self.log_path.read_text()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the worker and its pool children at once: no shutdown, no ack, no cleanup."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                self.kill()
        self._log.close()


@pytest.fixture
def start_worker(transactional_db):
    """Factory: start_worker(name="w1", extra_env={...}, beat=False) -> WorkerProcess; all stopped at teardown."""
    workers: list[WorkerProcess] = []

    def start(name: str = "w", extra_env: dict[str, str] | None = None, beat: bool = False) -> WorkerProcess:
        worker = WorkerProcess(name, extra_env, beat)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def celery_worker(start_worker):
    """One running worker for tests that just need jobs to be executed."""
    return start_worker("w")


def wait_for(predicate, timeout: float = 60, interval: float = 0.2, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


@pytest.fixture(scope="session")
def browser():
    """A real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop running in the test thread; the tests' own ORM calls are
    # synchronous and safe (Playwright's documented advice for pytest-django).
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        yield chromium
        chromium.close()


from tests.remote_mem0 import fault_proxy, remote_mem0  # noqa: E402,F401  (a second live instance, a fault proxy)
