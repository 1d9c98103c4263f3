"""The data subject's pages: the request form (honeypot, rate limit: erasure/throttling.py) and the status page.

Subject identifiers never appear in a URL (except the subject's own secret status token) or in a log line.
"""

import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import (
    HttpRequest,
    HttpResponse,
    UnreadablePostError,
)
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from .. import deadlines, notices, selectors, services
from ..forms import (
    REGULATION_HELP,
    REJECTION_REASON_TEXT,
    SubjectRequestForm,
)
from ..identity_intake import subject_request_submit
from ..models import ErasureRequest, IdentityStatus, State
from ..notices_models import StaffAlert
from ..throttling import subject_form_throttle_hit

logger = logging.getLogger(__name__)

SUBMITTED_SESSION_KEY = "erasure_submitted_request"


# --- data subject pages --------------------------------------------------------------------------------------


def _bad_post(request: HttpRequest) -> HttpResponse | None:
    """A friendly page for a POST the server cannot read (too large, malformed), instead of a bare error."""
    if request.method != "POST":
        return None
    try:
        request.POST  # noqa: B018 - parsing happens on first access
    except RequestDataTooBig:
        message = "What you sent is larger than this form accepts. Please shorten it and try again."
        return render(request, "erasure/subject_bad_request.html", {"message": message}, status=413)
    except (MultiPartParserError, UnreadablePostError, SuspiciousOperation):
        message = "What you sent could not be read. Please fill in the form again."
        return render(request, "erasure/subject_bad_request.html", {"message": message}, status=400)
    return None


@never_cache
@require_http_methods(["GET", "POST"])
def subject_request(request: HttpRequest) -> HttpResponse:
    bad = _bad_post(request)
    if bad is not None:
        return bad
    form = SubjectRequestForm(request.POST or None)
    context: dict[str, Any] = {"form": form, "regulation_help": REGULATION_HELP}
    if request.method == "POST":
        retry_after = subject_form_throttle_hit(request)
        if retry_after is not None:
            logger.warning("subject form throttled")
            response = render(request, "erasure/subject_throttled.html", status=429)
            response["Retry-After"] = str(retry_after)
            return response
        if form.is_bot:
            # Answer like a success so a bot learns nothing; nothing is created or sent.
            logger.info("subject form honeypot filled")
            return render(request, "erasure/subject_submitted.html", {"erasure": None})
        if form.is_valid():
            try:
                erasure, _created = subject_request_submit(
                    regulation=form.cleaned_data["regulation"],
                    user_ids=form.cleaned_data["user_ids"],
                    email=form.cleaned_data["email"],
                    suppress=form.cleaned_data.get("suppress", False),
                )
            except services.ErasureInputError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                request.session[SUBMITTED_SESSION_KEY] = str(erasure.pk)
                return redirect("erasure_pages:subject-submitted")
        return render(request, "erasure/subject_request.html", context, status=400)
    return render(request, "erasure/subject_request.html", context)


@never_cache
@require_GET
def subject_submitted(request: HttpRequest) -> HttpResponse:
    pk = request.session.get(SUBMITTED_SESSION_KEY)
    if not pk:
        return redirect("erasure_pages:subject-request")
    erasure = get_object_or_404(ErasureRequest, pk=pk)
    return render(request, "erasure/subject_submitted.html", {"erasure": erasure})


SUBJECT_STEPS = [
    ("received", "Request received"),
    ("identity", "Identity checked"),
    ("scheduled", "Erasure scheduled"),
    ("erased", "Data erased"),
    ("verified", "Erasure confirmed"),
]


def _subject_progress(erasure: ErasureRequest) -> tuple[str, str, list[dict[str, Any]]]:
    """(headline, explanation, steps) in plain words for the subject."""
    done = {
        "received": erasure.received_at,
        "identity": erasure.identity_verified_at,
        "scheduled": erasure.approved_at,
        "erased": erasure.deleted_at,
        "verified": erasure.verified_at,
    }
    steps: list[dict[str, Any]] = []
    current_found = False
    for key, label in SUBJECT_STEPS:
        at = done[key]
        status = "done" if at else ("todo" if current_found else "current")
        current_found = current_found or not at
        steps.append({"key": key, "label": label, "at": at, "status": status})

    state = erasure.state
    if state == State.VERIFIED:
        if erasure.held_count:
            grounds = "; ".join(notices._held_grounds(erasure)) or "GDPR Art. 17(3)"
            return (
                "Your data has been erased, except what we must keep",
                f"We erased {erasure.deleted_count or 0} items linked to your ids and checked that none of them "
                f"remains. {erasure.held_count} items are kept under a legal hold ({grounds}), as GDPR "
                "Art. 17(3) allows; they will be erased once the hold ends.",
                steps,
            )
        return (
            "Your data has been erased",
            "We erased the data linked to your ids and checked afterwards that none of it remains in our "
            "memory store.",
            steps,
        )
    if state == State.DELETED:
        return ("Your data has been erased", "We are now double-checking that nothing remains.", steps)
    if state == State.REJECTED:
        reason = REJECTION_REASON_TEXT.get(erasure.rejection_reason, REJECTION_REASON_TEXT["other"])
        if erasure.regulation == "gdpr":
            reason += (
                " You have the right to lodge a complaint with a supervisory authority (GDPR Art. 77), in "
                "particular in the EU member state where you live or work, and to seek a judicial remedy."
            )
        return ("We could not carry out your request", reason, [])
    if state == State.CANCELLED:
        return (
            "Your request was cancelled",
            "No data was erased. You can send a new request at any time.",
            [],
        )
    if state == State.FAILED:
        return (
            "Your erasure is in progress",
            "The erasure was interrupted by a technical problem. "
            + (
                "Our team has been alerted and will resume it; "
                if notices.team_alerted(erasure, StaffAlert.Kind.FAILED)
                else "It will be resumed; "
            )
            + "the deadline below still applies.",
            steps,
        )
    if erasure.is_running:
        return ("Your data is being erased", "The erasure has started and will finish shortly.", steps)
    if state == State.SCOPED:
        return (
            "Your erasure is scheduled",
            "We have found the data linked to your ids. The erasure is being prepared.",
            steps,
        )
    if erasure.identity_status == IdentityStatus.VERIFIED:
        return ("We are finding your data", "Your identity is confirmed. We are locating the data.", steps)
    if erasure.channel == "form" and erasure.identity_status == IdentityStatus.PENDING:
        return (
            "Please confirm your e-mail address",
            "We sent you an e-mail with a link and a code. Nothing is erased until you confirm that the request "
            "comes from you.",
            steps,
        )
    return (
        "We have received your request",
        "We are checking that the request comes from you. We may contact you by e-mail.",
        steps,
    )


@never_cache
@require_GET
def subject_status(request: HttpRequest, reference: str) -> HttpResponse:
    token = request.GET.get("token", "")
    erasure = selectors.erasure_request_by_status_token(reference=reference, token=token) if token else None
    if erasure is None:
        # Same answer for an unknown reference and a wrong token: the page reveals nothing.
        response = render(request, "erasure/subject_not_found.html", status=404)
        response["Referrer-Policy"] = "no-referrer"
        return response
    headline, explanation, steps = _subject_progress(erasure)
    days = deadlines.days_left(erasure)
    context = {
        "erasure": erasure,
        "headline": headline,
        "explanation": explanation,
        "steps": steps,
        "days_left": days,
        "late_days": -days if days is not None and days < 0 else None,
        "token": token,
        "can_resend": erasure.identity_status == IdentityStatus.PENDING
        and erasure.state == State.RECEIVED
        and bool(erasure.subject_email),
    }
    response = render(request, "erasure/subject_status.html", context)
    # same-origin, not no-referrer: under no-referrer the page's resend form would POST with "Origin: null",
    # which the CSRF check refuses; the secret link still never leaves the site in a Referer.
    response["Referrer-Policy"] = "same-origin"
    return response
