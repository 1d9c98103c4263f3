"""Certificates in bulk: a ZIP of the stored signed JSON and the PDF of every request verified in a date range,
streamed as it is written (stdlib zipfile into a sink the response drains after each member; the members'
central-directory records wait in a temporary file, not in memory), so memory stays bounded whatever the number of
certificates. The archive also holds the service's published keys and a README, so
each certificate can be checked offline with `manage.py verify_certificate FILE --public-key signing-keys.pem`.
"""

import io
import json
import tempfile
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

from .audit import audit_append
from .certificate import certificate_issue_once, certificate_pdf
from .models import ErasureRequest, State
from .signing import published_keys

CHUNK_ROWS = 200

README = """Certificates of erasure, requests verified from {start} to {end} (UTC days, inclusive).

certificates/<reference>.certificate.json  the signed certificate, byte for byte as the service stored it
certificates/<reference>.pdf               the same facts as a one-page PDF (the JSON is authoritative)
signing-keys.pem                           every key the service publishes (current and before rotations),
                                           also at /.well-known/erasure-signing-key

Check one offline:
    python manage.py verify_certificate certificates/<reference>.certificate.json --public-key signing-keys.pem
"""


class _Sink(io.RawIOBase):
    """A write-only, unseekable file that collects what zipfile writes until the generator takes it."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


class _Counted(list[zipfile.ZipInfo]):
    """An empty member list that reports how many members the archive has: what zipfile's end record counts."""

    def __init__(self, members: int) -> None:
        super().__init__()
        self._members = members

    def __len__(self) -> int:
        return self._members


_END_RECORD_SIZE = 22  # zipfile.sizeEndCentDir: the end-of-central-directory record without a comment


class _SpillingZipFile(zipfile.ZipFile):
    """A ZipFile writing to an unseekable stream whose members' central-directory records do not stay in memory:
    spill() encodes the records of the members written so far (with zipfile's own encoder) into a temporary file
    and forgets their ZipInfo objects; central_directory() writes the records back, chunk by chunk, before close()
    adds the end record. Without it a ZIP of 20,000 members keeps ~10 MiB of ZipInfo objects until it closes."""

    def __init__(self, file: Any, **kwargs: Any) -> None:
        super().__init__(file, mode="w", **kwargs)
        self._records = tempfile.TemporaryFile()
        self._members = 0

    def spill(self) -> None:
        if not self.filelist:
            return
        fp, start_dir, comment = self.fp, self.start_dir, self.comment
        encoded = io.BytesIO()
        try:
            # zipfile's end-record writer on a scratch buffer: the members' records, then a 22-byte end record
            # (no ZIP64 record: a handful of members at offset 0)
            self.fp, self.start_dir, self.comment = encoded, 0, b""
            self._write_end_record()  # type: ignore[attr-defined]
        finally:
            self.fp, self.start_dir, self.comment = fp, start_dir, comment
        self._records.write(encoded.getbuffer()[:-_END_RECORD_SIZE])
        self._members += len(self.filelist)
        self.filelist.clear()
        self.NameToInfo.clear()

    def central_directory(self, chunk_size: int = 1 << 20) -> Iterator[None]:
        """Writes the spilled records to the stream, one chunk at a time (yields after each); close() then writes
        the end record (ZIP64 when needed) counting them all."""
        self.spill()
        assert self.fp is not None
        self.start_dir = self.fp.tell()  # the central directory starts here
        self._records.seek(0)
        while chunk := self._records.read(chunk_size):
            self.fp.write(chunk)
            yield
        self.filelist = _Counted(self._members)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._records.close()


def _bounds(date_from: date | None, date_to: date | None) -> tuple[datetime | None, datetime | None]:
    start = datetime.combine(date_from, time.min, tzinfo=UTC) if date_from else None
    end = datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=UTC) if date_to else None
    return start, end


def _verified_in(date_from: date | None, date_to: date | None) -> QuerySet[ErasureRequest]:
    start, end = _bounds(date_from, date_to)
    qs = ErasureRequest.objects.filter(state=State.VERIFIED)
    if start is not None:
        qs = qs.filter(verified_at__gte=start)
    if end is not None:
        qs = qs.filter(verified_at__lt=end)
    return qs


def verified_requests(date_from: date | None, date_to: date | None) -> Iterator[ErasureRequest]:
    qs = _verified_in(date_from, date_to)
    return (
        qs.select_related("certificate_record").order_by("verified_at", "id").iterator(chunk_size=CHUNK_ROWS)
    )


def certificates_zip_stream(*, date_from: date | None, date_to: date | None, actor: str) -> Iterator[bytes]:
    """The ZIP, chunk by chunk: one chunk per member. A certificate never issued (verified without a signing key)
    is issued and stored on the way (certificate_issue_once)."""
    sink = _Sink()
    keys = "".join(k["public_key"] for k in published_keys())
    with _SpillingZipFile(sink, compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.txt", README.format(start=date_from or "the first", end=date_to or "today"))
        archive.writestr("signing-keys.pem", keys)
        archive.spill()
        yield sink.take()
        for request in verified_requests(date_from, date_to):
            try:
                stored = request.certificate_record
            except ErasureRequest.certificate_record.RelatedObjectDoesNotExist:
                stored = certificate_issue_once(request=request, actor=actor)
            document = json.loads(stored.document)
            archive.writestr(f"certificates/{stored.reference}.certificate.json", stored.document)
            archive.writestr(
                f"certificates/{stored.reference}.pdf", certificate_pdf(request=request, document=document)
            )
            archive.spill()
            yield sink.take()
        for _ in archive.central_directory():
            yield sink.take()
    yield sink.take()  # the end record


def certificates_zip_response(
    *, date_from: date | None, date_to: date | None, actor: str
) -> StreamingHttpResponse:
    """The streamed download. Raises ImproperlyConfigured without a signing key (before anything is sent).
    Side effect: one `certificates.exported` audit entry (the range and how many certificates)."""
    published_keys()  # no key: fail now, as a 503, not in the middle of the stream
    audit_append(
        actor=actor,
        action="certificates.exported",
        data={
            "from": date_from.isoformat() if date_from else None,
            "to": date_to.isoformat() if date_to else None,
            "certificates": _verified_in(date_from, date_to).count(),
        },
    )
    response = StreamingHttpResponse(
        certificates_zip_stream(date_from=date_from, date_to=date_to, actor=actor),
        content_type="application/zip",
    )
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="erasure-certificates-{stamp}.zip"'
    return response
