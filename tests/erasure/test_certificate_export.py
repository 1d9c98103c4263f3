"""Certificates in bulk: a streamed ZIP of the stored signed JSON and PDF certificates of a date range, each
verifiable offline with the keys the archive carries."""

import io
import json
import os
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from erasure import signing
from erasure.certificate import certificate_check_trusted, certificate_issue_once
from erasure.models import AuditEntry, Certificate
from tests.erasure.factories import canary_request as make_request

pytestmark = pytest.mark.django_db

URL = "/api/v1/certificates/export/"
ROOT = Path(__file__).resolve().parents[2]


def _verified_on(day: int):
    received = datetime(2026, 3, day, 8, tzinfo=UTC)
    return make_request(received_at=received, verified_at=datetime(2026, 3, day, 20, tzinfo=UTC))


def _download(staff_api, **query):
    response = staff_api.get(URL, query)
    assert response.status_code == 200, getattr(response, "content", b"")[:300]
    chunks = list(response.streaming_content)
    return response, chunks, zipfile.ZipFile(io.BytesIO(b"".join(chunks)))


def test_the_zip_holds_each_certificate_of_the_range_verifiable_offline(staff_api, tmp_path):
    # given: four verified requests, one before and one after the range; one certificate stored already
    _verified_on(1), _verified_on(5)  # outside the range
    first, second = _verified_on(2), _verified_on(3)
    stored_first = certificate_issue_once(request=first, actor="test")
    # when
    response, chunks, archive = _download(staff_api, **{"from": "2026-03-02", "to": "2026-03-04"})
    # then: the range's certificates, JSON and PDF, plus the published keys and a README
    names = sorted(archive.namelist())
    assert names == sorted(
        [
            "README.txt",
            "signing-keys.pem",
            f"certificates/{first.reference}.certificate.json",
            f"certificates/{first.reference}.pdf",
            f"certificates/{second.reference}.certificate.json",
            f"certificates/{second.reference}.pdf",
        ]
    )
    assert response["Content-Type"] == "application/zip"
    assert len(chunks) >= 4  # streamed member by member, not built whole in memory
    # the JSON is the stored certificate byte for byte (the missing one was issued and stored on the way)
    for request in (first, second):
        stored = Certificate.objects.get(request=request)
        assert archive.read(f"certificates/{request.reference}.certificate.json") == stored.document.encode()
        assert archive.read(f"certificates/{request.reference}.pdf").startswith(b"%PDF")
    assert Certificate.objects.get(request=first).sha256 == stored_first.sha256
    # each verifies against the keys in the archive, in process and with the offline command
    trusted = signing.load_public_keys(archive.read("signing-keys.pem"))
    assert list(trusted) == [signing.key_id()]
    for request in (first, second):
        document = json.loads(archive.read(f"certificates/{request.reference}.certificate.json"))
        assert certificate_check_trusted(document, trusted) == request.reference
    archive.extractall(tmp_path)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test",
           "DATABASE_URL": "postgresql://postgres@127.0.0.1:9/no_such_db"}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "manage.py", "verify_certificate",
         str(tmp_path / f"certificates/{second.reference}.certificate.json"),
         "--public-key", str(tmp_path / "signing-keys.pem")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0 and result.stdout.startswith(f"certificate valid: {second.reference}")
    exported = AuditEntry.objects.get(action="certificates.exported")
    assert exported.data == {"from": "2026-03-02", "to": "2026-03-04", "certificates": 2}


def test_an_empty_range_is_a_zip_with_the_keys_only(staff_api):
    _verified_on(1)
    _response, _chunks, archive = _download(staff_api, **{"from": "2026-04-01", "to": "2026-04-30"})
    assert sorted(archive.namelist()) == ["README.txt", "signing-keys.pem"]


@pytest.mark.parametrize(
    ("query", "field"),
    [({"from": "2026-03-05", "to": "2026-03-01"}, "to"), ({"from": "March"}, "from")],
)
def test_a_bad_range_is_400_naming_the_field(staff_api, query, field):
    response = staff_api.get(URL, query)
    assert response.status_code == 400 and field in response.json()


def test_a_plain_memory_key_gets_403(api):
    assert api.get(URL).status_code == 403


def _spilled_zip(members: int, *, spill_every: int = 1, chunk_size: int = 1 << 20) -> tuple[bytes, int]:
    from erasure.certificate_export import _Sink, _SpillingZipFile

    sink, stream, most_kept = _Sink(), [], 0
    with _SpillingZipFile(sink, compression=zipfile.ZIP_DEFLATED) as archive:
        for i in range(members):
            archive.writestr(f"certificates/ER-{i:06d}.json", f'{{"n": {i}}}')
            most_kept = max(most_kept, len(archive.filelist))
            if (i + 1) % spill_every == 0:
                archive.spill()
                stream.append(sink.take())
        for _ in archive.central_directory(chunk_size=chunk_size):
            stream.append(sink.take())
    stream.append(sink.take())
    return b"".join(stream), most_kept


def test_the_spilling_zip_keeps_no_member_records_and_reads_back_whole(tmp_path):
    # when: 300 members, the records spilled after each, the directory written back in 1 KiB chunks
    data, most_kept = _spilled_zip(300, chunk_size=1024)
    # then: never more than one member's record in memory, and an archive every reader accepts
    assert most_kept == 1
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    assert archive.namelist() == [f"certificates/ER-{i:06d}.json" for i in range(300)]
    assert json.loads(archive.read("certificates/ER-000299.json")) == {"n": 299}
    path = tmp_path / "spilled.zip"
    path.write_bytes(data)
    if Path("/usr/bin/unzip").exists():  # Info-ZIP, an independent reader
        assert subprocess.run(["/usr/bin/unzip", "-tq", str(path)], capture_output=True).returncode == 0


def test_the_spilling_zip_writes_zip64_end_records_past_65535_members():
    data, _ = _spilled_zip(70_000, spill_every=5_000)
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert len(archive.infolist()) == 70_000
    assert archive.read("certificates/ER-069999.json") == b'{"n": 69999}'
