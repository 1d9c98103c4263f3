"""`make bench`, hostile section: does a burst of the most expensive filters the API accepts slow an erasure down?

On its own database (<bench db>_hostile: three identical subjects of 100,000 memories in a 600,300-row store), a real
gunicorn (as `make run` starts it: 2 workers × 4 threads, WEB_STATEMENT_TIMEOUT_MS as configured) and one Celery
worker (`-c 1`, as the main bench):
  1. a quiet erasure of subject A (approve → `verified`, by the request's timestamps), after a warm-up request;
  2. the same erasure of subject B while 20 client threads post, without pause, the largest filter the API accepts
     (every memory, 99 metadata keys with `contains`: 199 conditions) to POST /v3/memories/;
  3. a second quiet erasure (subject C): the reference is the mean of 1. and 3.
The figure is 2. against that reference (target ≤ 1.5×), with the hostile requests' answers (200 / 400 / 503) and
latencies. Run alone with `python -m bench.hostile`; `python -m bench` runs it last and appends its table.
"""

import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

from .load import load_store

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 20
SUBJECTS = ["hostile-a", "hostile-b", "hostile-c"]
HOSTILE_FILTER = {"user_id": "*", "metadata": {f"k{i}": {"contains": "x"} for i in range(99)}}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _erase(env: dict[str, str], user: str, warm: str) -> dict:
    """bench/erasure.py: a warm-up request for `warm` (100 memories), then the measured one for `user`."""
    args = [sys.executable, "-m", "bench.erasure", "big", user, warm]
    out = subprocess.run(args, cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")][-1]


def _hammer(url: str, key: str, stop: threading.Event, answers: Counter, latencies: list[float]) -> None:
    body = json.dumps({"filters": HOSTILE_FILTER, "page_size": 10}).encode()
    while not stop.is_set():
        request = urllib.request.Request(
            url, data=body, method="POST",
            headers={"Authorization": f"Token {key}", "Content-Type": "application/json"},
        )  # fmt: skip
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError:
            status = 0
        latencies.append(time.perf_counter() - started)
        answers[status] += 1


def run() -> list[str]:
    """Builds the database, measures, drops it; returns the section's markdown lines."""
    from .__main__ import BIG, PG, _create_db, _drop_db, _log, _settle, _worker

    db = f"{BIG}_hostile"
    _log(f"hostile filters: loading {db}")
    _create_db(db)
    try:
        size = load_store(
            f"{PG}/{db}",
            groups=[(SUBJECTS[0], 100_000, 100_000), ("hostile-warm", 300, 100), ("user", 300_000, 100)],
            copies={SUBJECTS[1]: SUBJECTS[0], SUBJECTS[2]: SUBJECTS[0]},
        )
        _settle()
        with _worker(db) as (env, _worker_proc, _node):
            env = {**env, "DJANGO_ENV": "development"}
            key = subprocess.run(
                [sys.executable, "manage.py", "create_api_key", "--name", "bench-hostile"],
                cwd=ROOT, env=env, check=True, capture_output=True, text=True,
            ).stdout.strip().splitlines()[-1]  # fmt: skip
            port = _free_port()
            web_log = Path(f"/tmp/erasure-bench-hostile-web-{os.getpid()}.log")
            with web_log.open("w") as out:
                web = subprocess.Popen(
                    [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}",
                     "--workers", "2", "--threads", "4", "--timeout", "120"],
                    cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
            try:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).close()
                        break
                    except OSError as exc:
                        if web.poll() is not None or time.monotonic() > deadline:
                            log = web_log.read_text()[-2000:]
                            raise RuntimeError("bench web server did not start:\n" + log) from exc
                        time.sleep(0.3)
                _log("hostile filters: quiet erasure of 100,000 memories")
                quiet_before = _erase(env, SUBJECTS[0], "hostile-warm-0")
                _log(f"hostile filters: the same erasure under {CLIENTS} clients posting the largest filter")
                stop = threading.Event()
                answers: Counter = Counter()
                latencies: list[float] = []
                url = f"http://127.0.0.1:{port}/v3/memories/"
                threads = [
                    threading.Thread(target=_hammer, args=(url, key, stop, answers, latencies), daemon=True)
                    for _ in range(CLIENTS)
                ]
                for thread in threads:
                    thread.start()
                time.sleep(2)  # the burst is under way before the erasure starts
                try:
                    loud = _erase(env, SUBJECTS[1], "hostile-warm-1")
                finally:
                    stop.set()
                    for thread in threads:
                        thread.join(150)
                _log("hostile filters: second quiet erasure")
                quiet_after = _erase(env, SUBJECTS[2], "hostile-warm-2")
            finally:
                os.killpg(web.pid, 15)
                web.wait(30)
    finally:
        _drop_db(db)
    for result in (quiet_before, loud, quiet_after):
        assert result["deleted"] == result["scoped_total"] == 100_000, result
    reference = (quiet_before["seconds"] + quiet_after["seconds"]) / 2
    ratio = loud["seconds"] / reference
    timeout_ms = os.environ.get("WEB_STATEMENT_TIMEOUT_MS", "5000 (default)")
    codes = ", ".join(f"{code or 'no answer'}: {n}" for code, n in sorted(answers.items()))
    p50 = statistics.median(latencies) if latencies else 0.0
    worst = max(latencies, default=0.0)
    verdict = "PASS" if ratio <= 1.5 else "MISS"
    return [
        "",
        "## Hostile filters during an erasure (bench/hostile.py)",
        "",
        "| measurement | figure | reference (same run) | ratio | target | result |",
        "|---|---|---|---|---|---|",
        f"| erasure of 100,000 memories (approve → `verified`) while {CLIENTS} clients post the largest accepted "
        f"filter (199 conditions over all {size:,} memories) to POST /v3/memories/ through gunicorn (2 × 4 threads;"
        f" statement timeout {timeout_ms} ms) | {loud['seconds']:.3f} s | quiet runs before / after: "
        f"{quiet_before['seconds']:.3f} / {quiet_after['seconds']:.3f} s (mean {reference:.3f} s) "
        f"| {ratio:.2f}× | ≤ 1.5× | {verdict} |",
        f"| the hostile requests' answers during that erasure | {sum(answers.values())} answers ({codes}) "
        f"| — | — | no 500, none hanging | {'PASS' if not answers.get(500) and not answers.get(0) else 'MISS'} |",
        f"| their latency | median {p50:.2f} s, worst {worst:.2f} s | — | — | bounded by the timeout | info |",
    ]


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_ENV", "development")
    print("\n".join(run()))
