"""The CCPA report on 100,000 requests (issue 13: "answers within a second").

In a client process on a migrated database (DATABASE_URL): bulk-loads 100,000 synthetic CCPA requests received in
one calendar year (every state; some complied with in part; denials with every reason), then times
erasure.reports.ccpa_report for that year: the median of 5 calls after a warm-up one. The reference, measured in the
same process right after: one `SELECT count(*)` over the same year's rows (the least any report must read).
Prints one JSON line.

    python -m bench.reports                # inside `make bench` (bench/__main__.py), on its database
    python -m bench.reports --standalone   # creates, migrates and drops its own database
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
N = 100_000
YEAR = 2025  # the erasure bench's own requests are received "now": they never fall in this year
TARGET_SECONDS = 1.0


def _load(n: int) -> None:
    from erasure.models import ErasureRequest, RejectionReason

    reasons = RejectionReason.values
    start = datetime(YEAR, 1, 1, tzinfo=UTC)
    rows = []
    for i in range(n):
        received = start + timedelta(seconds=(i * 315_360) % (365 * 86_400))
        kind = i % 10
        fields: dict = {}
        if kind <= 5:
            fields = {
                "state": "verified",
                "verified_at": received + timedelta(days=i % 45, hours=i % 24),
                "held_count": 2 if i % 20 == 1 else 0,
            }
        elif kind <= 7:
            fields = {
                "state": "rejected",
                "rejected_at": received + timedelta(days=i % 12),
                "rejection_reason": reasons[i % len(reasons)],
            }
        elif kind == 8:
            fields = {"state": "cancelled", "cancelled_at": received + timedelta(days=1)}
        else:
            fields = {"state": "received"}
        rows.append(
            ErasureRequest(
                id=uuid.uuid4(),
                reference=f"BENCH-{i:08d}",
                regulation="ccpa",
                channel="api",
                received_at=received,
                due_at=(received + timedelta(days=45)).date(),
                subject_pseudonyms={"user_ids": [], "email": None},
                **fields,
            )
        )
        if len(rows) == 5_000:
            ErasureRequest.objects.bulk_create(rows)
            rows.clear()
    if rows:
        ErasureRequest.objects.bulk_create(rows)


def measure(n: int = N) -> dict:
    import django

    django.setup()
    from django.db import connection

    from erasure.reports import ccpa_report

    t0 = time.monotonic()
    _load(n)
    load_seconds = time.monotonic() - t0
    with connection.cursor() as cur:
        cur.execute("ANALYZE erasure_erasurerequest")
    ccpa_report(year=YEAR)  # warm-up
    runs = []
    for _ in range(5):
        t = time.perf_counter()
        report = ccpa_report(year=YEAR)
        runs.append(time.perf_counter() - t)
    refs = []
    for _ in range(5):
        t = time.perf_counter()
        with connection.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM erasure_erasurerequest WHERE regulation = 'ccpa' AND received_at >= %s "
                "AND received_at < %s",
                [datetime(YEAR, 1, 1, tzinfo=UTC), datetime(YEAR + 1, 1, 1, tzinfo=UTC)],
            )
            cur.fetchone()
        refs.append(time.perf_counter() - t)
    assert report["received"] == n, report
    assert report["received"] == (
        report["complied_in_whole"]
        + report["complied_in_part"]
        + report["denied"]["total"]
        + report["cancelled"]
        + report["open"]
    ), report
    return {
        "n": n,
        "seconds": statistics.median(runs),
        "all_seconds": runs,
        "reference_seconds": statistics.median(refs),
        "load_seconds": load_seconds,
        "received": report["received"],
        "median_days": report["median_days"],
    }


def table_row(result: dict) -> str:
    """The line bench/__main__.py adds to its table."""
    ok = "PASS" if result["seconds"] < TARGET_SECONDS else "MISS"
    ratio = result["seconds"] / result["reference_seconds"]
    return (
        f"| CCPA §7102(a) report (GET /api/v1/reports/ccpa/) over {result['n']:,} requests of one year "
        f"(median of 5 after a warm-up: {' / '.join(f'{x * 1000:.0f}' for x in result['all_seconds'])} ms) vs "
        f"`SELECT count(*)` of the same rows | {result['seconds'] * 1000:.0f} ms "
        f"| {result['reference_seconds'] * 1000:.0f} ms | {ratio:.1f}× | < 1 s | {ok} |"
    )


def _standalone() -> None:
    import psycopg

    pg = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
    db = os.environ.get("BENCH_REPORTS_DB", "erasure_bench_reports")
    env = {**os.environ, "DATABASE_URL": f"{pg}/{db}", "DJANGO_SETTINGS_MODULE": "config.settings.base",
           "ERASURE_QUIET_DEV_KEY": "1", "LOG_LEVEL": "WARNING", "DJANGO_ENV": "development"}  # fmt: skip
    with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}"')
        conn.execute(f'CREATE DATABASE "{db}"')
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        out = subprocess.run([sys.executable, "-m", "bench.reports"], cwd=ROOT, env=env, check=True,
                             capture_output=True, text=True).stdout  # fmt: skip
        result = json.loads(out.strip().splitlines()[-1])
        print("| measurement | figure | reference (same run) | ratio | target | result |")
        print("|---|---|---|---|---|---|")
        print(table_row(result))
    finally:
        with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}"')


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.reports")
    parser.add_argument("--standalone", action="store_true", help="on a database of its own")
    if parser.parse_args().standalone:
        _standalone()
    else:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
        sys.path.insert(0, str(ROOT))
        print(json.dumps(measure()))
