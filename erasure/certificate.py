"""The deletion certificate: a signed JSON document (and a one-page PDF of the same facts) for a verified request.

Document shape:  {"certificate": {...}, "signature": base64(Ed25519(canonical(certificate))),
                  "public_key": PEM, "key_id": sha256(raw public key) hex}
canonical(x) = JSON with sorted keys, separators (",", ":"), ASCII-escaped, UTF-8 — what is signed.

The facts are built only from fields that survive the request's pseudonymisation (pseudonyms, counts, digest,
timestamps, verification). A certificate is issued once, when the request is verified (or, for a request verified
without a signing key configured, at its first download), and stored (erasure.compliance_models.Certificate):
every download returns the same bytes, and the PDF is rendered from them deterministically.

Trust: a signature is only worth the key behind it. certificate_check_trusted accepts a certificate only when its
key id is one of the service's published keys (the current one and those before a rotation) and that key verifies
it; a document consistent with its own embedded key but signed by any other key is UnknownSigningKey.
"""

import hashlib
import io
import json
import logging
import textwrap
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from .audit import audit_append, audit_chain_head
from .canonical import canonical_json
from .downloads import Download
from .models import COMPLETION_TIMESTAMPS, AuditEntry, Certificate, ErasureRequest, State
from .services.stores import certificate_stores
from .signing import (
    ALGORITHM,
    SignatureInvalid,
    key_id,
    load_public_key,
    public_key_pem,
    sign,
    signature_check,
)

logger = logging.getLogger(__name__)

CERTIFICATE_VERSION = 1
CANONICALIZATION = "JSON, keys sorted, separators (',', ':'), non-ASCII escaped, UTF-8"
DIGEST_ALGORITHM = (
    "sha256 over the deleted memory ids in ascending order, each as its 16 bytes (RFC 9562 byte order)"
)
PSEUDONYM_ALGORITHM = "HMAC-SHA256 of the identifier (UTF-8) under the service's pseudonym key, hex"
# The certificate attests the completed erasure: its steps, the deadline extension and the notice to the subject
# (this order is the PDF's).
TIMESTAMP_FIELDS = (*COMPLETION_TIMESTAMPS, "extended_at", "notified_at")


SIGNING_NOT_CONFIGURED = (
    "Certificates cannot be signed: no signing key is configured on this server "
    "(set CERTIFICATE_SIGNING_KEY or CERTIFICATE_SIGNING_KEY_FILE)."
)


class CertificateNotAvailable(Exception):
    """The request is not verified: no certificate yet. Carries the state (for the 409 answer)."""

    def __init__(self, state: str):
        super().__init__(f"a certificate exists only once the request is verified (state: {state})")
        self.state = state


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def residual_windows() -> dict[str, Any]:
    backup_days = settings.BACKUP_RETENTION_DAYS
    wal_days = settings.WAL_RETENTION_DAYS
    return {
        "backups": {
            "retention_days": backup_days,
            "statement": (
                f"Database backups taken before the deletion still contain the erased data until they are "
                f"rotated out, at most {backup_days} days after the deletion. They are not restored to serve "
                f"requests; if one is restored, this erasure is re-applied before the data is used."
            ),
        },
        "wal": {
            "retention_days": wal_days,
            "statement": (
                f"PostgreSQL write-ahead log segments and archives written before the deletion still contain "
                f"the erased rows until they are recycled or expire, at most {wal_days} days after the deletion."
            ),
        },
        "other": (
            "Deleted rows stay in PostgreSQL data files as dead tuples until VACUUM reclaims the space; they are "
            "not readable through the service. No copy is kept in the audit trail or in this certificate."
        ),
    }


def _verified_audit_entry(request: ErasureRequest) -> dict[str, Any] | None:
    entry = (
        AuditEntry.objects.filter(request=request, action="request.verified")
        .order_by("-id")
        .values("id", "entry_hash")
        .first()
    )
    return {"entry_id": entry["id"], "entry_hash": entry["entry_hash"]} if entry else None


def certificate_facts(*, request: ErasureRequest) -> dict[str, Any]:
    """The facts of a verified request (identical at every issuance). Raises CertificateNotAvailable."""
    if request.state != State.VERIFIED:
        raise CertificateNotAvailable(request.state)
    return {
        "type": "erasure-certificate",
        "version": CERTIFICATE_VERSION,
        "reference": request.reference,
        "request_id": str(request.id),
        "regulation": {"code": request.regulation, "name": request.get_regulation_display()},
        "state": request.state,
        "subject_pseudonyms": request.subject_pseudonyms,
        "pseudonym_algorithm": PSEUDONYM_ALGORITHM,
        "scope_pseudonymised": request.scope_pseudonymised,
        "counts": {
            "scoped": request.scoped_total,
            "scoped_held": request.scoped_held,
            "deleted": request.deleted_count,
            "held": request.held_count,
            "history_rows_purged": request.history_purged_count,
        },
        "deleted_ids_digest": {"sha256": request.deleted_ids_digest, "algorithm": DIGEST_ALGORITHM},
        "timestamps": {name: _iso(getattr(request, name)) for name in TIMESTAMP_FIELDS},
        "due_at": _iso(request.due_at),
        "verification": request.verification,
        "verified_audit_entry": _verified_audit_entry(request),
        "residual_windows": residual_windows(),
        # Each store the erasure reached: its counts, digest, residue purged and what stays outside our reach.
        "stores": certificate_stores(request=request),
    }


def certificate_build(*, request: ErasureRequest) -> dict[str, Any]:
    """The signed JSON document for a verified request. Raises CertificateNotAvailable for any other state.
    Side effects: none (reads the request, its audit entries and the chain head; may create the dev key)."""
    certificate = certificate_facts(request=request)
    certificate["issuance"] = {
        "issuer": settings.CERTIFICATE_ISSUER,
        "issued_at": timezone.now().isoformat(),
        "audit_chain_head": audit_chain_head(),
    }
    certificate["signature_algorithm"] = ALGORITHM
    certificate["key_id"] = key_id()
    certificate["canonicalization"] = CANONICALIZATION
    return {
        "certificate": certificate,
        "signature": sign(canonical_json(certificate)),
        "public_key": public_key_pem(),
        "key_id": certificate["key_id"],
    }


def certificate_authenticate(document: Any, public_key_pem: bytes | str | None = None) -> str:
    """Checks a document offline (no database, no settings). Returns the reference; raises SignatureInvalid with
    the reason. With public_key_pem (the published key) the check proves who signed; with only the embedded key
    it proves integrity, and the key id must then be compared with the published one."""
    if not isinstance(document, dict):
        raise SignatureInvalid("the document is not a JSON object")
    certificate = document.get("certificate")
    signature = document.get("signature")
    if not isinstance(certificate, dict) or not isinstance(signature, str):
        raise SignatureInvalid("the document lacks 'certificate' or 'signature'")
    pem = public_key_pem or document.get("public_key")
    if not pem:
        raise SignatureInvalid("no public key: none embedded and none given")
    public_key = load_public_key(pem)
    if certificate.get("signature_algorithm") != ALGORITHM:
        raise SignatureInvalid(f"unsupported signature algorithm {certificate.get('signature_algorithm')!r}")
    if certificate.get("key_id") != key_id(public_key):
        raise SignatureInvalid("the certificate's key_id is not the sha256 of this public key")
    signature_check(canonical_json(certificate), signature, public_key)
    return str(certificate.get("reference", ""))


class UnknownSigningKey(SignatureInvalid):
    """The document is consistent with the key embedded in it, but that key is not one the service publishes."""

    def __init__(self, kid: Any):
        super().__init__(f"signature valid but signed by an unknown key (key id {kid})")
        self.key_id = kid


def certificate_check_trusted(document: Any, trusted: dict[str, Any]) -> str:
    """Authenticates a document offline against trusted keys ({key_id: Ed25519PublicKey}, e.g.
    signing.load_public_keys of the published bundle). Returns the reference. Raises UnknownSigningKey when the
    signature is sound but made by a key outside `trusted`, SignatureInvalid (with the reason) for anything else."""
    if not isinstance(document, dict) or not isinstance(document.get("certificate"), dict):
        raise SignatureInvalid("the document lacks 'certificate' or 'signature'")
    kid = document["certificate"].get("key_id")
    key = trusted.get(kid) if isinstance(kid, str) else None
    if key is not None:
        return certificate_authenticate(document, public_key_pem(key))
    certificate_authenticate(document)  # tampered or malformed: that reason first
    raise UnknownSigningKey(kid)


def certificate_is_authentic(document: dict[str, Any], public_key_pem: bytes | None = None) -> bool:
    try:
        certificate_authenticate(document, public_key_pem)
    except SignatureInvalid:
        return False
    return True


# --- PDF ---------------------------------------------------------------------------------------------------------


def certificate_pdf(*, request: ErasureRequest, document: dict[str, Any] | None = None) -> bytes:
    """A one-page A4 PDF with the facts of the signed document (the stored one unless given), its signature and
    key id; the same document always gives the same bytes. Raises CertificateNotAvailable unless verified."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfgen import canvas

    document = document or certificate_stored(request=request)[0]
    cert = document["certificate"]
    counts = cert["counts"]
    stamps = cert["timestamps"]
    width, height = A4
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=A4, invariant=1)  # no creation time or random id: same bytes every time
    pdf.setTitle(f"Certificate of erasure {cert['reference']}")
    pdf.setSubject(cert["reference"])
    pdf.setAuthor(cert["issuance"]["issuer"])
    left, y = 18 * mm, height - 22 * mm

    def line(text: str, size: float = 9, font: str = "Helvetica", gap: float = 4.6 * mm) -> None:
        nonlocal y
        pdf.setFont(font, size)
        pdf.drawString(left, y, text)
        y -= gap

    def field(label: str, value: Any, column: float = 0.0) -> None:
        nonlocal y
        label_width = 48 * mm if not column else 50 * mm
        pdf.setFont("Helvetica-Bold", 8.5)
        pdf.drawString(left + column, y, label)
        pdf.setFont("Helvetica", 8.5)
        pdf.drawString(left + column + label_width, y, "—" if value in (None, "") else str(value))
        y -= 4.3 * mm

    def section(title: str) -> None:
        nonlocal y
        y -= 1.5 * mm
        line(title, size=11, font="Helvetica-Bold", gap=5.5 * mm)

    line("Certificate of erasure", size=18, font="Helvetica-Bold", gap=8 * mm)
    line(f"{cert['reference']} — {cert['regulation']['name']}", size=12, font="Helvetica-Bold", gap=6 * mm)
    line(
        "This certifies that the personal data covered by the request below was deleted and that the deletion "
        "was verified.",
        size=9,
    )
    section("Subject (keyed pseudonyms, HMAC-SHA256)")
    user_ids = cert["subject_pseudonyms"].get("user_ids") or []
    for i, value in enumerate(user_ids[:4]):
        field(f"user id #{i + 1}", value)
    if len(user_ids) > 4:
        field("", f"and {len(user_ids) - 4} more user ids (listed in the signed JSON)")
    if cert["subject_pseudonyms"].get("email"):
        field("e-mail", cert["subject_pseudonyms"]["email"])
    scope_keys = ", ".join(sorted(cert["scope_pseudonymised"])) or "all of the subject's memories"
    field("scope narrowed by", scope_keys)
    section("Counts")
    field("memories in scope", counts["scoped"])
    field("memories deleted", counts["deleted"])
    field("kept under legal hold", counts["held"])
    field("history rows purged", counts["history_rows_purged"])
    field("digest of deleted ids", cert["deleted_ids_digest"]["sha256"])
    # Timeline (left) and verification (right) side by side, so the page holds any verification detail.
    section("Timeline (UTC)")
    pdf.setFont("Helvetica-Bold", 11)
    pdf.drawString(left + 95 * mm, y + 5.5 * mm, "Verification")
    top = y
    for name, value in stamps.items():
        if value:
            field(name.replace("_at", "").replace("_", " "), value[:19].replace("T", " "))
    field("due by", cert["due_at"])
    bottom, y = y, top
    verification = cert["verification"] or {}
    for key in sorted(k for k, v in verification.items() if isinstance(v, int | str) and k != "checked_at"):
        field(key.replace("_", " "), verification[key], column=95 * mm)
    y = min(y, bottom)
    if len(cert.get("stores") or []) > 1:
        section("Stores")
        for entry in cert["stores"]:
            residue = entry["residue_purged"]
            line(
                f"{entry['store']} ({entry['kind']}): {entry['deleted']} deleted, {entry['held']} held, "
                f"history {residue['history_rows']} / entities {residue['entity_rows']} / "
                f"chat messages {residue['chat_messages']} purged; digest {entry['deleted_ids_digest'][:16]}…",
                size=8,
                gap=3.8 * mm,
            )
            if entry["kind"] != "builtin":
                for text in textwrap.wrap("Outside our reach: " + entry["outside_reach"], 120):
                    line(text, size=7.5, gap=3.4 * mm)
    section("Residual windows")
    for part in ("backups", "wal"):
        for text in textwrap.wrap(cert["residual_windows"][part]["statement"], 120):
            line(text, size=8, gap=3.8 * mm)
    for text in textwrap.wrap(cert["residual_windows"]["other"], 120):
        line(text, size=8, gap=3.8 * mm)
    section("Issuance and signature")
    field("issuer", cert["issuance"]["issuer"])
    field("issued at", cert["issuance"]["issued_at"][:19].replace("T", " "))
    head = cert["issuance"]["audit_chain_head"]
    field("audit chain head", f"#{head['entry_id']} {head['entry_hash']}")
    field("signature algorithm", cert["signature_algorithm"])
    field("key id (sha256)", cert["key_id"])
    pdf.setFont("Courier", 7)
    for chunk in textwrap.wrap(document["signature"], 100):
        pdf.drawString(left, y, chunk)
        y -= 3.4 * mm
    pdf.setFont("Helvetica-Oblique", 7.5)
    pdf.drawString(
        left,
        12 * mm,
        "The signed JSON certificate is authoritative; check it offline with: "
        "python manage.py verify_certificate FILE --public-key KEY.pem",
    )
    pdf.showPage()
    pdf.save()
    return buf.getvalue()


def document_bytes(document: dict[str, Any]) -> bytes:
    """The served form of a document: indented JSON, keys sorted, ASCII (what Certificate.document stores)."""
    return json.dumps(document, cls=DjangoJSONEncoder, indent=2, sort_keys=True, ensure_ascii=True).encode(
        "ascii"
    )


def certificate_issue_once(
    *, request: ErasureRequest, actor: str, just_verified: bool = False
) -> Certificate:
    """Issues the request's certificate once and stores it; a second call returns the stored one. Raises
    CertificateNotAvailable before `verified` and ImproperlyConfigured without a signing key (before any write).
    just_verified: the caller's transaction has just moved the request to `verified` and holds its row, so no
    certificate can exist yet (the verification's own path, spared the look-ups).
    Side effects: one Certificate row, one `certificate.issued` audit entry (key id, sha256 of the document)."""
    if not just_verified:
        stored = Certificate.objects.filter(request=request).first()
        if stored is not None:
            return stored
    signing_key_id = key_id()  # ImproperlyConfigured here, before anything is written
    with transaction.atomic():
        if just_verified:
            locked = request
        else:
            locked = ErasureRequest.objects.select_for_update().get(pk=request.pk)
            stored = Certificate.objects.filter(request=locked).first()
            if stored is not None:  # issued meanwhile by the holder of the lock
                return stored
        document = certificate_build(request=locked)
        data = document_bytes(document)
        digest = hashlib.sha256(data).hexdigest()
        issued = Certificate(
            request=locked,
            reference=locked.reference,
            verified_at=locked.verified_at or locked.updated_at,  # (rows verified before timestamps existed)
            issued_at=timezone.now(),
            key_id=signing_key_id,
            document=data.decode("ascii"),
            sha256=digest,
        )
        issued.save(force_insert=True)
        audit_append(
            actor=actor,
            action="certificate.issued",
            request=locked,
            data={
                "key_id": signing_key_id,
                "sha256": digest,
                "chain_head": document["certificate"]["issuance"]["audit_chain_head"]["entry_id"],
            },
        )
    return issued


def certificate_issue_on_verify(*, request: ErasureRequest) -> Certificate | None:
    """Called in the transaction that verifies the request: issues its certificate there, so the proof is fixed
    when the work is. Without a signing key the verification still completes (logged); the certificate is then
    issued at its first download."""
    try:
        return certificate_issue_once(request=request, actor="worker", just_verified=True)
    except ImproperlyConfigured:
        logger.warning("certificate not issued: no signing key", extra={"request": str(request.id)})
        return None


def certificate_stored(
    *, request: ErasureRequest, actor: str = "worker"
) -> tuple[dict[str, Any], Certificate]:
    """The stored certificate (issued now if it never was) and its document. Raises as certificate_issue_once."""
    if request.state != State.VERIFIED:
        raise CertificateNotAvailable(request.state)
    stored = certificate_issue_once(request=request, actor=actor)
    return json.loads(stored.document), stored


def certificate_issue(*, request: ErasureRequest, actor: str, fmt: str = "json") -> Download:
    """The stored certificate as a download: the signed JSON document byte for byte, or its PDF with fmt="pdf".
    Raises CertificateNotAvailable before `verified`. Side effects: the certificate issued and stored if it never
    was; one `certificate.downloaded` audit entry. Used by the Erasure API and the privacy-team console."""
    document, stored = certificate_stored(request=request, actor=actor)
    audit_append(
        actor=actor,
        action="certificate.downloaded",
        request=request,
        data={"format": fmt, "key_id": stored.key_id, "sha256": stored.sha256},
    )
    if fmt == "pdf":
        pdf = certificate_pdf(request=request, document=document)
        return Download(pdf, "application/pdf", f"{request.reference}.pdf", inline=True)
    return Download(
        stored.document.encode("ascii"), "application/json", f"{request.reference}.certificate.json"
    )
