"""The DRP status of a request (section 3.03), derived from the erasure request it became: underscored fields,
ISO 8601 times in UTC with +00:00."""

from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from ..models import ErasureRequest, IdentityStatus, State
from .models import DrpRequest

RECORD_DAYS = 60  # after a final state, how long we keep answering for the request (then `expired`)
FINAL = {"fulfilled", "revoked", "denied", "expired"}


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="seconds") if value else None


def _end_of(day: Any) -> datetime:
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


def user_verification_url(drp: DrpRequest) -> str:
    return f"{settings.SITE_URL}/privacy/verify/drp/{drp.request_id}/"


def _erasure_status(drp: DrpRequest, r: ErasureRequest) -> dict[str, Any]:
    from ..forms import REJECTION_REASON_TEXT

    if r.state == State.VERIFIED:
        kept = f"; {r.held_count} item(s) kept under a legal hold (GDPR Art. 17(3))" if r.held_count else ""
        return {
            "status": "fulfilled",
            "processing_details": f"erased {r.deleted_count or 0} item(s) and verified none remain{kept}",
            "final_at": r.verified_at,
        }
    if r.state == State.REJECTED:
        return {
            "status": "denied",
            "reason": r.rejection_reason or "other",
            "processing_details": REJECTION_REASON_TEXT.get(r.rejection_reason, ""),
            "final_at": r.rejected_at,
        }
    if r.state == State.CANCELLED:
        if drp.revoked_at:
            return {"status": "revoked", "final_at": drp.revoked_at}
        return {
            "status": "denied",
            "reason": "other",
            "processing_details": "the request was cancelled by the business",
            "final_at": r.cancelled_at,
        }
    out: dict[str, Any] = {"status": "in_progress", "expected_by": iso(_end_of(r.due_at))}
    if r.identity_status == IdentityStatus.PENDING:
        out.update(reason="need_user_verification", user_verification_url=user_verification_url(drp))
        out["processing_details"] = "the user needs to confirm their e-mail address"
    elif r.state in (State.DELETED,) or r.approved_at:
        out["processing_details"] = "the erasure is running"
    else:
        out["processing_details"] = "the request is being processed"
    if r.extended_at:
        out["processing_details"] += f"; deadline extended: {r.extension_reason}"[:400]
    return out


def drp_status(drp: DrpRequest, *, now: datetime | None = None) -> dict[str, Any]:
    """The Exercise Status object of this request as of now."""
    now = now or timezone.now()
    if drp.erasure is not None:
        derived = _erasure_status(drp, drp.erasure)
    else:
        derived = {
            "status": drp.status or "denied",
            "reason": drp.reason,
            "processing_details": drp.processing_details,
            "final_at": drp.final_at,
        }
    final_at = derived.pop("final_at", None)
    body: dict[str, Any] = {"request_id": str(drp.request_id), "received_at": iso(drp.received_at)}
    if drp.agent_request_id:
        body["agent_request_id"] = drp.agent_request_id
    body.update({k: v for k, v in derived.items() if v})
    if body["status"] in FINAL and final_at:
        expires = final_at + timedelta(days=RECORD_DAYS)
        body["expires_at"] = iso(expires)
        if now >= expires:
            body = {"request_id": body["request_id"], "received_at": body["received_at"], "status": "expired"}
    return body
