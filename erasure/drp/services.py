"""Writes of the DRP channel: agent registration, pair-wise tokens, exercises (a deletion becomes an erasure
request through erasure_request_create), revocation, and the status callbacks queued on every change."""

import json
import logging
import re
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from memories.pseudonyms import pseudonym

from ..audit import audit_append
from ..models import ErasureRequest, Regulation, RejectionReason, State
from .crypto import DrpMessageError, decode, new_token, open_signed, token_hash, verify_key_valid
from .models import DrpAgent, DrpCallback, DrpRequest
from .status import drp_status

logger = logging.getLogger(__name__)

AGENT_ID_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")
CLOCK_SKEW = timedelta(seconds=60)
IDENTITY_CLAIMS = (
    "name", "email", "email_verified", "phone_number", "phone_number_verified", "address", "address_verified",
    "power_of_attorney",
)  # fmt: skip
REGIMES = {
    "ccpa": Regulation.CCPA,
    "gdpr": Regulation.GDPR,
    "voluntary": Regulation.CCPA,
    "": Regulation.CCPA,
}


class DrpInputError(ValueError):
    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


# --- agents ---------------------------------------------------------------------------------------------------


@transaction.atomic
def drp_agent_register(
    *, agent_id: str, name: str, verify_key: str, trusted: bool = False, actor: str
) -> DrpAgent:
    """Registers an authorized agent with its base64 Ed25519 verify key (again: updates it and voids its
    token). Side effects: the DrpAgent row, one audit entry."""
    agent_id = (agent_id or "").strip()
    if not AGENT_ID_RE.fullmatch(agent_id):
        raise DrpInputError("agent_id", "1-100 characters: letters, digits, '_', '.', '-'")
    if not (name or "").strip() or "\x00" in name:
        raise DrpInputError("name", "give the agent's name (no NUL characters)")
    verify_key = (verify_key or "").strip()
    if not verify_key_valid(verify_key):
        raise DrpInputError("verify_key", "must be a base64-encoded 32-byte Ed25519 verify key")
    agent, created = DrpAgent.objects.update_or_create(
        agent_id=agent_id,
        defaults={
            "name": name.strip()[:200],
            "verify_key": verify_key,
            "trusted": bool(trusted),
            "enabled": True,
            "token_hash": "",
            "token_issued_at": None,
            "created_by": actor[:150],
        },
    )
    audit_append(
        actor=actor,
        action="drp.agent_registered" if created else "drp.agent_updated",
        data={"agent_id": agent_id, "trusted": agent.trusted},
    )
    return agent


def agent_for_bearer(authorization: str) -> DrpAgent:
    """The agent whose pair-wise token this Authorization header presents (401 without one, 403 unknown)."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise DrpMessageError(
            401, "an Authorization: Bearer <token> header is required (POST /v1/agent/{id})"
        )
    agent = DrpAgent.objects.filter(token_hash=token_hash(token.strip()), enabled=True).first()
    if agent is None:
        raise DrpMessageError(403, "the bearer token is not valid")
    return agent


def _time(document: dict[str, Any], claim: str) -> datetime:
    value = document.get(claim)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise DrpMessageError(400, f"{claim} must be an ISO 8601 timestamp") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def check_claims(document: dict[str, Any], agent: DrpAgent, *, require: bool = True) -> None:
    """Steps 3-6 of section 3.07, in order: agent-id, business-id, issued-at <= now, now < expires-at. With
    require=False (a revoke, whose document may hold only a reason) only the claims present are checked."""
    if require or "agent-id" in document:
        if document.get("agent-id") != agent.agent_id:
            raise DrpMessageError(403, "agent-id does not match the agent of this key or token")
    if require or "business-id" in document:
        business = settings.DRP_BUSINESS_ID
        if not business:
            raise DrpMessageError(503, "this business has no DRP_BUSINESS_ID configured")
        if document.get("business-id") != business:
            raise DrpMessageError(403, "business-id names another business", fatal=True)
    now = timezone.now()
    if require or "issued-at" in document:
        if _time(document, "issued-at") > now + CLOCK_SKEW:
            raise DrpMessageError(403, "issued-at is in the future (clock skew?)")
    if require or "expires-at" in document:
        if now >= _time(document, "expires-at"):
            raise DrpMessageError(403, "the request has expired (expires-at is past)", fatal=True)


def drp_pair(*, agent_id: str, body: bytes) -> tuple[DrpAgent, str]:
    """Pair-wise key setup (2.05): a signed message of the agent named in the URL; returns a new bearer token
    (only its hash is stored; a new pairing replaces the old token). DrpMessageError on any failure."""
    agent = DrpAgent.objects.filter(agent_id=agent_id, enabled=True).first()
    raw = decode(body)
    if agent is None:
        raise DrpMessageError(403, "unknown agent")
    document = open_signed(raw, agent.verify_key)
    check_claims(document, agent)
    token = new_token()
    DrpAgent.objects.filter(id=agent.id).update(token_hash=token_hash(token), token_issued_at=timezone.now())
    logger.info("drp agent paired", extra={"agent": agent.agent_id})
    return agent, token


# --- exercises ------------------------------------------------------------------------------------------------


def _denied_at_once(agent: DrpAgent, document: dict[str, Any], reason: str, details: str) -> DrpRequest:
    now = timezone.now()
    return DrpRequest.objects.create(
        agent=agent,
        **_request_fields(document),
        status="denied",
        reason=reason,
        processing_details=details,
        received_at=now,
        final_at=now,
    )


def _request_fields(document: dict[str, Any]) -> dict[str, Any]:
    callback = str(document.get("status_callback") or "")
    email = str(document.get("email") or "").strip()
    return {
        "exercise": str(document.get("exercise") or "")[:40],
        "regime": str(document.get("regime") or "")[:40],
        "agent_request_id": str(document.get("agent-request-id") or "")[:200],
        "drp_version": str(document.get("drp.version") or "")[:20],
        "status_callback": callback if callback.startswith(("https://", "http://")) else "",
        "email_verified": document.get("email_verified") is True,
        "claims_pseudonymised": {
            "email": pseudonym(email.lower()) if email else None,
            "claims": sorted(k for k in IDENTITY_CLAIMS if k in document),
        },
    }


@transaction.atomic
def drp_exercise(*, agent: DrpAgent, body: bytes) -> DrpRequest:
    """Data Rights Exercise (2.01). A `deletion` becomes an erasure request (channel drp); its identity is
    verified at once when a trusted agent attests `email_verified: true`, otherwise the subject gets the
    verification mail and the status says need_user_verification. Other exercises are denied
    (claim_not_covered). Side effects: DrpRequest row; for a deletion those of erasure_request_create and
    possibly of the identity proof."""
    from .. import services
    from ..identity import identity_challenge_create, identity_mark_verified

    document = open_signed(decode(body), agent.verify_key)
    check_claims(document, agent)
    exercise = str(document.get("exercise") or "")
    if exercise != "deletion":
        return _denied_at_once(
            agent, document, RejectionReason.CLAIM_NOT_COVERED, "this business handles deletion requests only"
        )
    regime = str(document.get("regime") or "").lower()
    if regime not in REGIMES:
        return _denied_at_once(
            agent, document, RejectionReason.OUTSIDE_JURISDICTION, f"regime {regime[:20]!r} is not supported"
        )
    email = str(document.get("email") or "").strip()
    if not email:
        return _denied_at_once(agent, document, RejectionReason.NO_MATCH, "an email claim is needed")
    try:
        erasure, _token = services.erasure_request_create(
            regulation=REGIMES[regime], user_ids=[], email=email, channel="drp", actor=f"drp:{agent.agent_id}"
        )
    except services.ErasureInputError as exc:
        raise DrpMessageError(400, f"{exc.field}: {exc.message}") from None
    ErasureRequest.objects.filter(id=erasure.id).update(acknowledged_at=timezone.now())
    erasure.refresh_from_db()
    if agent.trusted and document.get("email_verified") is True:
        erasure = identity_mark_verified(
            request=erasure, method="drp-trusted-agent", actor=f"drp:{agent.agent_id}"
        )
    else:
        identity_challenge_create(request=erasure)
    drp = DrpRequest.objects.create(
        agent=agent, erasure=erasure, received_at=erasure.received_at, **_request_fields(document)
    )
    logger.info("drp exercise received", extra={"agent": agent.agent_id, "drp_request": str(drp.request_id)})
    return drp


def drp_request_for(*, agent: DrpAgent, request_id: str) -> DrpRequest:
    """The agent's own request (404 unknown, 403 another agent's: section 2.02.1)."""
    try:
        drp = DrpRequest.objects.select_related("erasure", "agent").filter(request_id=request_id).first()
    except Exception:  # noqa: BLE001 - a malformed UUID
        drp = None
    if drp is None:
        raise DrpMessageError(404, "no data rights request with this id")
    if drp.agent_id != agent.id:
        raise DrpMessageError(403, "this request is managed by another agent")
    return drp


@transaction.atomic
def drp_revoke(*, agent: DrpAgent, drp: DrpRequest, body: bytes) -> DrpRequest:
    """Data Rights Revoke (2.04): possible until the erasure starts (409 afterwards). The user's reason is not
    kept. Side effects: revoked_at, the erasure cancelled (its audit entry), the status callback."""
    from .. import services

    document = open_signed(decode(body), agent.verify_key) if body.strip() else {}
    check_claims(document, agent, require=False)
    drp = (
        DrpRequest.objects.select_for_update(of=("self",))
        .select_related("erasure")
        .get(request_id=drp.request_id)
    )
    erasure = drp.erasure
    if erasure is None or erasure.state not in (State.RECEIVED, State.SCOPED) or erasure.approved_at:
        raise DrpMessageError(
            409, "the request can no longer be revoked (the erasure started or it is final)"
        )
    drp.revoked_at = timezone.now()
    drp.save(update_fields=["revoked_at"])
    try:
        services.erasure_request_cancel(
            request=erasure, actor=f"drp:{agent.agent_id}", note="revoked by agent"
        )
    except services.IllegalTransition:
        raise DrpMessageError(409, "the request can no longer be revoked (the erasure started)") from None
    drp.refresh_from_db()
    return drp


# --- status callbacks -----------------------------------------------------------------------------------------


def drp_status_changed(*, erasure: ErasureRequest) -> DrpCallback | None:
    """Queues a callback with the request's new status (unless it equals the last one queued) and sends it after
    commit. Runs inside the move's transaction."""
    drp = DrpRequest.objects.select_related("erasure").filter(erasure_id=erasure.id).first()
    if drp is None or not drp.status_callback:
        return None
    drp.erasure = erasure
    payload = drp_status(drp)
    last = drp.callbacks.order_by("-id").values_list("payload", flat=True).first()
    if last == payload:
        return None
    now = timezone.now()
    callback = DrpCallback.objects.create(drp_request=drp, payload=payload, created_at=now, updated_at=now)
    from .tasks import drp_callback_send_task

    transaction.on_commit(lambda: drp_callback_send_task.delay(callback.id))
    return callback


def drp_callback_send(*, callback_id: int) -> bool:
    """POSTs one status to the agent's status_callback. True when delivered (older undelivered ones are then
    superseded: the agent has the newest) or nothing to do; False to retry."""
    with transaction.atomic():
        callback = (
            DrpCallback.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("drp_request")
            .filter(id=callback_id, status__in=[DrpCallback.Status.PENDING, DrpCallback.Status.FAILED])
            .first()
        )
        if callback is None:
            return True
        callback.attempts += 1
        callback.updated_at = timezone.now()
        request = urllib.request.Request(
            callback.drp_request.status_callback,
            data=json.dumps(callback.payload).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - http(s) only, checked
                ok = 200 <= response.status < 300
                error = "" if ok else f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            ok, error = False, f"HTTP {exc.code}"
        except Exception as exc:  # noqa: BLE001 - agent down, DNS, timeout: retried
            ok, error = False, type(exc).__name__
        if not ok:
            callback.status, callback.last_error = DrpCallback.Status.FAILED, error[:200]
            callback.save(update_fields=["status", "last_error", "attempts", "updated_at"])
            return False
        callback.status, callback.sent_at, callback.last_error = (
            DrpCallback.Status.SENT,
            callback.updated_at,
            "",
        )
        callback.save(update_fields=["status", "sent_at", "last_error", "attempts", "updated_at"])
        DrpCallback.objects.filter(
            drp_request_id=callback.drp_request_id,
            id__lt=callback.id,
            status__in=[DrpCallback.Status.PENDING, DrpCallback.Status.FAILED],
        ).update(status=DrpCallback.Status.SUPERSEDED, updated_at=callback.updated_at)
    return True


def drp_callbacks_resume(*, stale_seconds: float = 900) -> int:
    """Re-enqueues callbacks whose message was lost or whose task gave up (pending or failed, untouched for
    stale_seconds, less than two days old). Returns how many."""
    from .tasks import drp_callback_send_task

    now = timezone.now()
    ids = list(
        DrpCallback.objects.filter(
            status__in=[DrpCallback.Status.PENDING, DrpCallback.Status.FAILED],
            updated_at__lt=now - timedelta(seconds=stale_seconds),
            created_at__gt=now - timedelta(days=2),
        ).values_list("id", flat=True)[:500]
    )
    for callback_id in ids:
        drp_callback_send_task.delay(callback_id)
    return len(ids)


def drp_verifications_expire() -> int:
    """DRP requests whose user did not confirm the e-mail before the last mailed link expired are denied with
    insuf_verification (section 3.02: the need_user_verification stage timed out). Side effects: those of
    erasure_request_reject (audit entry, status callback). Returns how many."""
    from .. import services
    from ..models import Channel, IdentityStatus

    now = timezone.now()
    ids = list(
        ErasureRequest.objects.filter(
            channel=Channel.DRP,
            state=State.RECEIVED,
            identity_status=IdentityStatus.PENDING,
            identity_challenges__isnull=False,
        )
        .exclude(identity_challenges__expires_at__gt=now)
        .values_list("id", flat=True)
        .distinct()[:500]
    )
    done = 0
    for request_id in ids:
        with transaction.atomic():
            erasure = ErasureRequest.objects.get(id=request_id)
            try:
                services.erasure_request_reject(
                    request=erasure,
                    actor="worker",
                    reason=RejectionReason.INSUF_VERIFICATION,
                    note="the user did not confirm the e-mail address in time",
                )
            except services.IllegalTransition:
                continue
            done += 1
    return done
