"""Runs the engine in this process on the database named by DATABASE_URL and prints JSON timings.

python -m bench.probe     reads one user id per line on stdin; for each, runs one job over that user to the end
                          and prints one JSON line {"seconds", "deleted", "status"} (flushed), until stdin closes.
The parent interleaves two of these (one per store) so that both stores' figures share the machine's load.
"""

import json
import os
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
os.environ.setdefault("ERASURE_QUIET_DEV_KEY", "1")

import django  # noqa: E402

django.setup()

from django.db import transaction  # noqa: E402

from memories.engine import deletion_job_create, deletion_job_run  # noqa: E402


def main() -> None:
    for line in sys.stdin:
        user_id = line.strip()
        started = time.perf_counter()
        with transaction.atomic():
            job = deletion_job_create(
                kind="filter", scope={"user_id": user_id}, requested_by="bench", enqueue=False
            )
        result = deletion_job_run(job_id=job.id, budget_seconds=float("inf"))
        seconds = time.perf_counter() - started
        out = {"seconds": seconds, "deleted": result.job.deleted_count, "status": result.job.status}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
