"""Signed supplements to a stored certificate: when staff erase, under a verified request, memories a lifted legal
hold released (erasure.services.holds.hold_release_erase), the request's certificate stays byte for byte as issued
and a supplement records the later erasure. Same envelope as a certificate ({"certificate", "signature",
"public_key", "key_id"}), so `verify_certificate` checks it offline; it pins the certificate it supplements by
sha256 and key id. The hold is named by pseudonym only.
"""

import hashlib
import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from memories.models import DeletionJob, Memory
from memories.pseudonyms import pseudonym

from .audit import audit_append, audit_chain_head
from .canonical import canonical_json
from .certificate import CANONICALIZATION, DIGEST_ALGORITHM, PSEUDONYM_ALGORITHM, document_bytes
from .downloads import Download
from .models import Certificate, CertificateSupplement, ErasureRequest, HoldRelease
from .notices import hold_release_notice_send
from .signing import ALGORITHM, key_id, public_key_pem, sign

logger = logging.getLogger(__name__)

SUPPLEMENT_VERSION = 1


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def supplement_build(*, release: HoldRelease, job: DeletionJob, number: int) -> dict[str, Any]:
    """The signed supplement document for a release erased by `job` (SUCCEEDED). Side effects: none."""
    request = release.request
    original = Certificate.objects.filter(request=request).values("sha256", "key_id").first()
    remaining = Memory.objects.filter(id__in=release.memory_ids).count()
    facts: dict[str, Any] = {
        "type": "erasure-certificate-supplement",
        "version": SUPPLEMENT_VERSION,
        "supplement": number,
        "reference": request.reference,
        "request_id": str(request.id),
        # The stored certificate of the request, unchanged; None if it was never issued (no signing key then).
        "supplements_certificate": original,
        "reason": "memories kept under a legal hold, erased under this request after the hold was lifted",
        "hold": {"pseudonym": pseudonym(str(release.hold_id)), "reason": release.hold.reason},
        "pseudonym_algorithm": PSEUDONYM_ALGORITHM,
        "counts": {
            "released": len(release.memory_ids),
            "deleted": job.deleted_count,
            "held": job.held_count,  # still kept by another active hold
            "history_rows_purged": job.history_purged_count,
            "remaining_at_issuance": remaining,
        },
        "deleted_ids_digest": {"sha256": job.digest, "algorithm": DIGEST_ALGORITHM},
        "timestamps": {
            "hold_lifted_at": _iso(release.hold.lifted_at),
            "erasure_decided_at": _iso(release.decided_at),
            "deleted_at": _iso(job.finished_at),
        },
        "issuance": {
            "issuer": settings.CERTIFICATE_ISSUER,
            "issued_at": timezone.now().isoformat(),
            "audit_chain_head": audit_chain_head(),
        },
        "signature_algorithm": ALGORITHM,
        "key_id": key_id(),
        "canonicalization": CANONICALIZATION,
    }
    return {
        "certificate": facts,
        "signature": sign(canonical_json(facts)),
        "public_key": public_key_pem(),
        "key_id": facts["key_id"],
    }


def hold_release_job_finished(*, job: DeletionJob) -> CertificateSupplement | None:
    """Called in the final transaction of a job that erased released memories under a request (erasure/receivers.py):
    on success, issues and stores the request's next certificate supplement and tells the subject (a notice in the
    outbox; recorded as unaddressed when the request holds no e-mail any more). Without a signing key the notice
    still goes; the supplement is not issued (logged). Side effects: a CertificateSupplement row, a SubjectNotice,
    one `certificate.supplement_issued` audit entry."""
    release = HoldRelease.objects.select_related("request", "hold").filter(deletion_job_id=job.id).first()
    if release is None or job.status != DeletionJob.Status.SUCCEEDED:
        return None
    request = ErasureRequest.objects.select_for_update().get(pk=release.request_id)
    release.request = request
    hold_release_notice_send(request=request)
    if CertificateSupplement.objects.filter(release=release).exists():
        return None
    try:
        signing_key_id = key_id()
    except ImproperlyConfigured:
        logger.warning(
            "certificate supplement not issued: no signing key", extra={"request": str(request.id)}
        )
        return None
    number = (request.certificate_supplements.aggregate(n=Max("number"))["n"] or 0) + 1
    data = document_bytes(supplement_build(release=release, job=job, number=number))
    supplement = CertificateSupplement.objects.create(
        request=request,
        release=release,
        number=number,
        issued_at=timezone.now(),
        key_id=signing_key_id,
        document=data.decode("ascii"),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    audit_append(
        actor="worker",
        action="certificate.supplement_issued",
        request=request,
        data={"number": number, "key_id": signing_key_id, "sha256": supplement.sha256, "job": str(job.id)},
    )
    return supplement


def supplement_download(*, request: ErasureRequest, number: int, actor: str) -> Download | None:
    """A stored supplement, byte for byte, or None. Side effects: one `certificate.downloaded` audit entry."""
    stored = CertificateSupplement.objects.filter(request=request, number=number).first()
    if stored is None:
        return None
    with transaction.atomic():
        audit_append(
            actor=actor,
            action="certificate.downloaded",
            request=request,
            data={"format": "json", "supplement": number, "key_id": stored.key_id, "sha256": stored.sha256},
        )
    return Download(
        stored.document.encode("ascii"),
        "application/json",
        f"{request.reference}.supplement-{number}.certificate.json",
    )
