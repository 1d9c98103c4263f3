"""Certificates in bulk (issue 13: "10,000 certificates with bounded memory"): GET /api/v1/certificates/export/.

In a client process on a migrated database (DATABASE_URL): bulk-inserts 10,000 verified requests with stored
certificates (each signed once with the service key; 1,000 verified on one day, 9,000 on the next), then streams
the ZIP through the API (Django's test client, in this process, the body drained chunk by chunk and discarded)
after a warm-up one: the 1,000 of the first day (the reference) and all 10,000. For each: wall time, bytes, and the peak RSS
growth over the RSS before the download (psutil, sampled every 5 ms). Bounded memory: the 10,000 export's growth
must stay well under 10× the 1,000's. Prints one JSON line.

    python -m bench.certificates                # inside `make bench` (bench/__main__.py), on its database
    python -m bench.certificates --standalone   # creates, migrates and drops its own database
"""

import argparse
import gc
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
N = int(os.environ.get("BENCH_CERTIFICATES_N", "10000"))
REF = N // 10
DAY = datetime(2024, 3, 4, 12, tzinfo=UTC)  # before anything else the bench verifies
MAX_RATIO = 3.0  # 10× the certificates: memory growth at most 3× the reference's


def _load(n: int, ref: int) -> None:
    from django.conf import settings

    from erasure.canonical import canonical_json
    from erasure.certificate import (
        CANONICALIZATION,
        DIGEST_ALGORITHM,
        PSEUDONYM_ALGORITHM,
        document_bytes,
        residual_windows,
    )
    from erasure.models import Certificate, ErasureRequest
    from erasure.signing import ALGORITHM, key_id, public_key_pem, sign

    kid, pem, windows = key_id(), public_key_pem(), residual_windows()
    requests, certificates = [], []
    for i in range(n):
        verified = DAY + timedelta(days=0 if i < ref else 1, seconds=i)
        request = ErasureRequest(
            id=uuid.uuid4(), reference=f"BCERT-{i:07d}", regulation="gdpr", channel="api", state="verified",
            received_at=verified - timedelta(days=3), due_at=(verified + timedelta(days=27)).date(),
            verified_at=verified, deleted_count=40, subject_pseudonyms={"user_ids": [f"{i:064x}"], "email": None},
        )  # fmt: skip
        stamps = {"received_at": request.received_at.isoformat(), "verified_at": verified.isoformat()}
        facts = {
            "type": "erasure-certificate", "version": 1, "reference": request.reference,
            "request_id": str(request.id), "regulation": {"code": "gdpr", "name": "GDPR Art. 17"},
            "state": "verified", "subject_pseudonyms": request.subject_pseudonyms,
            "pseudonym_algorithm": PSEUDONYM_ALGORITHM, "scope_pseudonymised": {},
            "counts": {"scoped": 40, "scoped_held": 0, "deleted": 40, "held": 0, "history_rows_purged": 2},
            "deleted_ids_digest": {"sha256": f"{i:064x}", "algorithm": DIGEST_ALGORITHM}, "timestamps": stamps,
            "due_at": request.due_at.isoformat(), "verification": {"remaining": 0}, "verified_audit_entry": None,
            "residual_windows": windows, "stores": [],
            "issuance": {"issuer": settings.CERTIFICATE_ISSUER, "issued_at": verified.isoformat(),
                         "audit_chain_head": {"entry_id": 0, "entry_hash": "0" * 64}},
            "signature_algorithm": ALGORITHM, "key_id": kid, "canonicalization": CANONICALIZATION,
        }  # fmt: skip
        data = document_bytes(
            {"certificate": facts, "signature": sign(canonical_json(facts)), "public_key": pem, "key_id": kid}
        ).decode("ascii")
        requests.append(request)
        certificates.append(
            Certificate(
                request=request,
                reference=request.reference,
                verified_at=verified,
                issued_at=verified,
                key_id=kid,
                document=data,
                sha256="0" * 64,
            )  # fmt: skip
        )
        if len(requests) == 2_000:
            ErasureRequest.objects.bulk_create(requests)
            Certificate.objects.bulk_create(certificates)
            requests.clear(), certificates.clear()
    if requests:
        ErasureRequest.objects.bulk_create(requests)
        Certificate.objects.bulk_create(certificates)


def _download(client, date_from: str, date_to: str) -> dict:
    import psutil

    proc = psutil.Process()
    gc.collect()
    base = proc.memory_info().rss
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.monotonic()
    response = client.get("/api/v1/certificates/export/", {"from": date_from, "to": date_to})
    assert response.status_code == 200, response.status_code
    size = members = 0
    for chunk in response.streaming_content:
        size += len(chunk)
        members += 1
    seconds = time.monotonic() - t0
    done.set()
    sampler.join()
    return {
        "seconds": seconds,
        "bytes": size,
        "chunks": members,
        "rss_growth": peak[0] - base,
        "rss_base": base,
    }


def downloads(ref: int = REF) -> dict:
    """The downloads, in a process of their own (the load's freed heap would hide any growth)."""
    import django

    django.setup()
    from django.test import Client

    from memories.services import api_key_create

    _key, raw = api_key_create(name="bench-certificates", is_staff=True)
    client = Client(HTTP_AUTHORIZATION=f"Token {raw}", SERVER_NAME="localhost")
    first, second = DAY.date().isoformat(), (DAY + timedelta(days=1)).date().isoformat()
    warm = _download(client, first, first)  # warm-up: imports, the PDF fonts, the first queries' caches
    small = _download(client, first, first)
    big = _download(client, first, second)
    return {"warm": warm, "small": small, "big": big}


def measure(n: int = N, ref: int = REF) -> dict:
    import django

    django.setup()
    t0 = time.monotonic()
    _load(n, ref)
    load_seconds = time.monotonic() - t0
    out = subprocess.run(
        [sys.executable, "-m", "bench.certificates", "--downloads"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    result = json.loads(out.strip().splitlines()[-1])
    small, big = result["small"], result["big"]
    # a chunk per certificate, plus the README and keys, the central directory (a chunk per MiB) and the end record
    assert ref + 3 <= small["chunks"] <= ref + 5 and n + 3 <= big["chunks"] <= n + 6, (small, big)
    return {"n": n, "ref": ref, "load_seconds": load_seconds, **result}


def table_row(result: dict) -> str:
    """The line bench/__main__.py adds to its table."""
    small, big = result["small"], result["big"]
    mib = 1024 * 1024
    ratio = big["rss_growth"] / max(small["rss_growth"], mib)
    ok = "PASS" if ratio <= MAX_RATIO else "MISS"
    return (
        f"| certificates ZIP (GET /api/v1/certificates/export/, signed JSON + PDF each) of {result['n']:,} "
        f"certificates: {big['seconds']:.1f} s, {big['bytes'] / mib:.0f} MiB; peak RSS growth "
        f"{big['rss_growth'] / mib:.1f} MiB | vs the ZIP of {result['ref']:,} in the same run: "
        f"{small['seconds']:.1f} s, {small['bytes'] / mib:.0f} MiB, peak RSS growth {small['rss_growth'] / mib:.1f} MiB "
        f"(the first one, in the fresh process: {result['warm']['rss_growth'] / mib:.1f} MiB) "
        f"| {ratio:.1f}× memory for {result['n'] // result['ref']}× certificates | ≤ {MAX_RATIO:.0f}× | {ok} |"
    )


def _standalone() -> None:
    import psycopg

    pg = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
    db = os.environ.get("BENCH_CERTIFICATES_DB", "erasure_bench_certificates")
    env = {**os.environ, "DATABASE_URL": f"{pg}/{db}", "DJANGO_SETTINGS_MODULE": "config.settings.base",
           "ERASURE_QUIET_DEV_KEY": "1", "LOG_LEVEL": "WARNING", "DJANGO_ENV": "development"}  # fmt: skip
    with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}"')
        conn.execute(f'CREATE DATABASE "{db}"')
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        out = subprocess.run([sys.executable, "-m", "bench.certificates"], cwd=ROOT, env=env, check=True,
                             capture_output=True, text=True).stdout  # fmt: skip
        result = json.loads(out.strip().splitlines()[-1])
        print(json.dumps(result))
        print("| measurement | figure | reference (same run) | ratio | target | result |")
        print("|---|---|---|---|---|---|")
        print(table_row(result))
    finally:
        with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}"')


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.certificates")
    parser.add_argument("--standalone", action="store_true", help="on a database of its own")
    parser.add_argument(
        "--downloads", action="store_true", help="(internal) the downloads, on a loaded database"
    )
    args = parser.parse_args()
    if args.standalone:
        _standalone()
    else:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
        sys.path.insert(0, str(ROOT))
        print(json.dumps(downloads() if args.downloads else measure()))
