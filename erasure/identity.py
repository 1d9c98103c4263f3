"""The subject proves control of the request's e-mail address (a signed expiring link confirmed by a button press,
or a short code), and which user ids are theirs: ids equal to the verified e-mail, ids the optional
IDENTITY_RESOLVER hook returns for it, or ids staff confirm at verify-identity. Scoping needs every id confirmed.

The link carries only the challenge's id, signed with the server secret; the code is an HMAC of that id. Neither
is stored, so a database reader cannot verify anyone; a used, superseded or expired challenge verifies nothing.
"""

import hashlib
import hmac
import logging
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from memories.pseudonyms import pseudonym

from .audit import audit_append
from .identity_models import IdentityChallenge
from .models import Action, ErasureRequest, IdentityStatus, State

logger = logging.getLogger(__name__)

LINK_SALT = "erasure.identity-link"
CODE_DIGITS = 6
MAX_CODE_ATTEMPTS = 5


class IdentityProofError(Exception):
    """A link or code that verifies nothing. `kind` is one of invalid, expired, used, locked, wrong_code, closed;
    `message` says so plainly to the subject."""

    MESSAGES = {
        "invalid": "This link is not valid. Please use the link exactly as it appears in our e-mail.",
        "expired": "This link has expired. Ask us for a new one from your request's status page.",
        "used": "This link was already used. Your e-mail address may already be confirmed: check your request's "
        "status page.",
        "superseded": "A newer confirmation e-mail was sent: please use the link or code in that one.",
        "locked": "Too many wrong codes. Use the link in the e-mail, or ask for a new one from your request's "
        "status page.",
        "wrong_code": "That code is not right. Check the code in our e-mail and try again.",
        "closed": "This request no longer needs a confirmation.",
    }

    def __init__(self, kind: str):
        self.kind = kind
        self.message = self.MESSAGES[kind]
        super().__init__(kind)


def link_max_age() -> int:
    return int(settings.IDENTITY_LINK_MAX_AGE_SECONDS)


def challenge_token(challenge: IdentityChallenge) -> str:
    return signing.dumps(str(challenge.id), salt=LINK_SALT)


def challenge_code(challenge: IdentityChallenge) -> str:
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"identity-code:{challenge.id}".encode(), hashlib.sha256
    ).hexdigest()
    return f"{int(digest, 16) % 10**CODE_DIGITS:0{CODE_DIGITS}d}"


def verification_link(challenge: IdentityChallenge) -> str:
    return f"{settings.SITE_URL}/privacy/verify/{challenge_token(challenge)}/"


def code_page_link(request: ErasureRequest) -> str:
    return f"{settings.SITE_URL}/privacy/verify/?reference={request.reference}"


# --- which user ids are the subject's -------------------------------------------------------------------------


def _resolver() -> Callable[[str], Any] | None:
    path = getattr(settings, "IDENTITY_RESOLVER", "")
    return import_string(path) if path else None


def resolve_user_ids(email: str) -> list[str] | None:
    """The user ids the company's account system knows for this verified e-mail (None without a resolver)."""
    resolver = _resolver()
    if resolver is None or not email:
        return None
    try:
        found = resolver(email)
    except Exception as exc:  # noqa: BLE001 - a broken hook must not block the proof; staff confirm instead
        logger.warning("identity resolver failed", extra={"error": type(exc).__name__})
        return None
    return sorted({str(u).strip() for u in found or [] if str(u).strip()})[:100]


def unconfirmed_user_ids(request: ErasureRequest) -> list[str]:
    confirmed = set(request.subject_confirmed_pseudonyms or [])
    return [u for u in request.subject_user_ids or [] if pseudonym(u) not in confirmed]


def user_ids_confirmed(request: ErasureRequest) -> bool:
    """True when the request names user ids and every one of them is confirmed: what scoping needs."""
    return bool(request.subject_user_ids) and not unconfirmed_user_ids(request)


def user_id_rows(request: ErasureRequest) -> list[dict[str, Any]]:
    """For the console: each claimed id and whether it is confirmed."""
    confirmed = set(request.subject_confirmed_pseudonyms or [])
    return [{"user_id": u, "confirmed": pseudonym(u) in confirmed} for u in request.subject_user_ids or []]


def _with_ids(request: ErasureRequest, user_ids: list[str], confirmed: set[str]) -> dict[str, Any]:
    """The field updates that set the request's user ids (and their pseudonyms) and the confirmed ones."""
    pseudonyms = dict(request.subject_pseudonyms or {})
    pseudonyms["user_ids"] = sorted(pseudonym(u) for u in user_ids)
    return {
        "subject_user_ids": user_ids,
        "subject_pseudonyms": pseudonyms,
        "subject_confirmed_pseudonyms": sorted(pseudonym(u) for u in confirmed if u in user_ids),
    }


def email_proof_updates(request: ErasureRequest, email: str) -> dict[str, Any]:
    """Updates once the subject proved control of `email`: ids equal to it are confirmed, and so are the ids the
    resolver knows for it. A request that named no ids gets the resolver's ids and the e-mail itself (many agents
    key memories by e-mail), all confirmed."""
    claimed = list(request.subject_user_ids or [])
    confirmed = {
        u for u in request.subject_user_ids or [] if pseudonym(u) in set(request.subject_confirmed_pseudonyms)
    }
    confirmed |= {u for u in claimed if u.strip().lower() == email.strip().lower()}
    resolved = resolve_user_ids(email)
    if not claimed and email:
        claimed = sorted({*(resolved or []), email.strip()})
        confirmed |= set(claimed)
    elif resolved is not None:
        confirmed |= set(claimed) & set(resolved)
    return _with_ids(request, sorted(set(claimed)), confirmed)


def staff_confirmation_updates(request: ErasureRequest, user_ids: list[str] | None) -> dict[str, Any]:
    """Staff verify-identity: the given ids are attached, and every id of the request counts as confirmed."""
    from .services.validation import clean_subject

    ids = set(request.subject_user_ids or [])
    if user_ids:
        attached, _ = clean_subject(list(user_ids), "")
        ids |= set(attached)
    return _with_ids(request, sorted(ids), ids)


# --- challenges -----------------------------------------------------------------------------------------------


@transaction.atomic
def identity_challenge_create(*, request: ErasureRequest) -> IdentityChallenge:
    """A new challenge for the request's e-mail (older ones superseded) and its verification mail queued.
    Side effects: one IdentityChallenge row, the `verification` notice (re)queued on commit."""
    from .notices import notice_queue
    from .notices_models import SubjectNotice

    now = timezone.now()
    IdentityChallenge.objects.filter(
        request=request, used_at__isnull=True, superseded_at__isnull=True
    ).update(superseded_at=now)
    challenge = IdentityChallenge.objects.create(
        id=uuid.uuid4(),
        request=request,
        created_at=now,
        expires_at=now + timedelta(seconds=link_max_age()),
    )
    notice_queue(
        request=request,
        kind=SubjectNotice.Kind.VERIFICATION,
        secrets={"challenge": str(challenge.id)},
        again=True,
    )
    return challenge


def challenge_from_token(token: str) -> IdentityChallenge:
    """The open challenge a link names, or IdentityProofError (invalid, expired, used, superseded, closed)."""
    try:
        challenge_id = signing.loads(token, salt=LINK_SALT, max_age=link_max_age())
    except signing.SignatureExpired:
        raise IdentityProofError("expired") from None
    except signing.BadSignature:
        raise IdentityProofError("invalid") from None
    challenge = IdentityChallenge.objects.select_related("request").filter(id=challenge_id).first()
    if challenge is None:
        raise IdentityProofError("invalid")
    _check_open(challenge)
    return challenge


def _check_open(challenge: IdentityChallenge) -> None:
    if challenge.used_at is not None:
        raise IdentityProofError("used")
    if challenge.superseded_at is not None:
        raise IdentityProofError("superseded")
    if challenge.expires_at <= timezone.now():
        raise IdentityProofError("expired")
    request = challenge.request
    if request.identity_status != IdentityStatus.PENDING or request.state != State.RECEIVED:
        raise IdentityProofError("closed")


def identity_confirm_link(*, token: str) -> ErasureRequest:
    """The subject pressed the button of the mailed link: the challenge is used up and the request's identity
    verified. Raises IdentityProofError. Side effects: the challenge and request rows, one audit entry, the
    follow-ups of the move (erasure.notices.request_event)."""
    with transaction.atomic():
        challenge = challenge_from_token(token)
        challenge = (
            IdentityChallenge.objects.select_for_update().select_related("request").get(id=challenge.id)
        )
        _check_open(challenge)
        return _verify(challenge, method="email-link")


def identity_confirm_code(*, reference: str, code: str) -> ErasureRequest:
    """The subject typed the mailed code. A wrong code counts an attempt (kept even though it raises); after
    MAX_CODE_ATTEMPTS the challenge is locked. Raises IdentityProofError."""
    code = "".join(ch for ch in (code or "") if ch.isdigit())
    with transaction.atomic():
        challenge = (
            IdentityChallenge.objects.select_for_update()
            .select_related("request")
            .filter(request__reference=reference, superseded_at__isnull=True)
            .order_by("-created_at")
            .first()
        )
        if challenge is None:
            raise IdentityProofError("wrong_code")
        _check_open(challenge)
        if challenge.attempts >= MAX_CODE_ATTEMPTS:
            raise IdentityProofError("locked")
        if hmac.compare_digest(code, challenge_code(challenge)):
            return _verify(challenge, method="email-code")
        challenge.attempts += 1
        challenge.save(update_fields=["attempts"])
    logger.info("wrong identity code", extra={"challenge": str(challenge.id), "attempts": challenge.attempts})
    raise IdentityProofError("locked" if challenge.attempts >= MAX_CODE_ATTEMPTS else "wrong_code")


def _verify(challenge: IdentityChallenge, *, method: str) -> ErasureRequest:
    challenge.used_at = timezone.now()
    challenge.save(update_fields=["used_at"])
    return identity_mark_verified(request=challenge.request, method=method, actor="subject")


def identity_mark_verified(*, request: ErasureRequest, method: str, actor: str) -> ErasureRequest:
    """Records that the subject proved control of the request's e-mail (by the mailed link or code, or by a
    trusted DRP agent's attestation). Side effects: identity fields and confirmed ids on the row, one audit entry,
    the move's follow-ups (notices, DRP status)."""
    from .notices import request_event
    from .services.common import compare_and_set

    request = compare_and_set(
        request,
        Action.CONFIRM_IDENTITY,
        seen={"identity_status": IdentityStatus.PENDING},
        identity_status=IdentityStatus.VERIFIED,
        identity_verified_at=timezone.now(),
        identity_verified_by=f"subject ({method})",
        **email_proof_updates(request, request.subject_email),
    )
    audit_append(
        actor=actor,
        action="request.identity_verified",
        request=request,
        data={
            "state": request.state,
            "method": method,
            "user_id_count": len(request.subject_user_ids),
            "confirmed_count": len(request.subject_confirmed_pseudonyms),
        },
    )
    request_event(request=request, event="identity_verified")
    return request
