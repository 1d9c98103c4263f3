"""The newcomer's tools: the Makefile, the set-up checks of `make test` and the `manage.py` wrapper say what is
wrong in one line and work from any shell."""

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLOSED_PORT = "postgresql://postgres@127.0.0.1:9/erasure"  # nothing listens on port 9


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )


def test_the_makefile_names_only_files_the_repository_has():
    makefile = (ROOT / "Makefile").read_text()
    paths = set(
        re.findall(r"(?<![\w$(./-])((?:[\w-]+/)*[\w-]+\.(?:sh|py|lock|toml|cfg|ini|txt|md))\b", makefile)
    )
    modules = set(re.findall(r"python -m ([\w.]+)", makefile)) - {"pytest", "venv", "pip"}
    assert "scripts/run.sh" in paths and "bench" in modules  # the patterns do find what the Makefile names
    missing = [p for p in paths if not (ROOT / p).exists()]
    missing += [m for m in modules if not (ROOT / m.replace(".", "/")).with_suffix(".py").exists()
                and not (ROOT / m.replace(".", "/") / "__main__.py").exists()]  # fmt: skip
    assert missing == []


def test_make_test_preflight_names_an_unreachable_database_in_one_line():
    result = _run([sys.executable, "scripts/preflight.py", "--check"], DATABASE_URL=CLOSED_PORT)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "PostgreSQL is not reachable at 127.0.0.1:9: start it or set DATABASE_URL"
    ]


def test_make_test_preflight_names_an_unreachable_redis_in_one_line():
    result = _run([sys.executable, "scripts/preflight.py", "--check"], REDIS_URL="redis://127.0.0.1:9/0")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Redis is not reachable at 127.0.0.1:9: start it or set REDIS_URL"
    ]


def test_make_run_preflight_names_a_port_in_use_in_one_line():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = _run([sys.executable, "scripts/preflight.py"], PORT=str(port))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"Port {port} is in use: stop what listens there or set PORT"
    ]


def test_a_missing_chromium_stops_make_test_with_one_line_saying_how():
    result = _run(["bash", "scripts/ensure_chromium.sh"], CHROMIUM_PATH="/nonexistent/chromium")
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert "Chromium is missing at CHROMIUM_PATH=/nonexistent/chromium" in line and result.stdout == ""


def test_a_present_chromium_passes_silently():
    result = _run(["bash", "scripts/ensure_chromium.sh"], CHROMIUM_PATH=sys.executable)  # any executable file
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_manage_py_run_by_another_interpreter_uses_the_checkout_venv():
    # -S: no site-packages, so without the wrapper's re-execution Django could not even be imported
    result = _run([sys._base_executable, "-S", "manage.py", "version"])  # type: ignore[attr-defined]
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("5.2")


def test_verify_audit_chain_without_a_database_prints_one_line_naming_it():
    result = _run(
        [sys.executable, "manage.py", "verify_audit_chain"],
        DATABASE_URL=CLOSED_PORT,
        DJANGO_SETTINGS_MODULE="config.settings.test",
    )
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("cannot reach the database erasure at 127.0.0.1:9 (")
    assert "DATABASE_URL" in line and "Traceback" not in result.stderr


def test_manage_py_without_its_secrets_says_so_in_one_line():
    # outside development, without PSEUDONYM_KEY (whatever var/secret-key holds)
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SECRET_KEY", "PSEUDONYM_KEY")}
    env.update(DJANGO_ENV="production", DJANGO_SETTINGS_MODULE="config.settings.base")
    result = subprocess.run(
        [sys.executable, "manage.py", "diffsettings"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("manage.py: ") and "PSEUDONYM_KEY must be set outside development" in line
