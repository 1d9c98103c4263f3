"""The subject's identity pages: the mailed link (a page with a Confirm button: mail scanners pre-fetch links, so
the GET never verifies), the code page, the page an authorized agent sends its user to (DRP
user_verification_url), and the resend from the status page. Every failure says plainly what happened."""

import logging
from typing import Any
from urllib.parse import urlparse

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from .. import identity, selectors
from ..drp.models import DrpRequest
from ..identity import IdentityProofError
from ..models import Channel, IdentityStatus, State
from ..throttling import subject_form_throttle_hit

logger = logging.getLogger(__name__)


def _throttled(request: HttpRequest) -> HttpResponse | None:
    """The form's rate limit applies to code attempts and resends too: 429 with Retry-After once over it."""
    retry_after = subject_form_throttle_hit(request)
    if retry_after is None:
        return None
    response = render(request, "erasure/subject_throttled.html", status=429)
    response["Retry-After"] = str(retry_after)
    return response


def _no_referrer(response: HttpResponse) -> HttpResponse:
    # same-origin, not no-referrer: the secret link never leaves our site in a Referer, while the pages' own POST
    # forms still carry an Origin (under no-referrer browsers send "Origin: null" and the CSRF check refuses it).
    response["Referrer-Policy"] = "same-origin"
    return response


def _failed(request: HttpRequest, exc: IdentityProofError, status: int = 400) -> HttpResponse:
    context = {"message": exc.message, "kind": exc.kind}
    return _no_referrer(render(request, "erasure/subject_verify_failed.html", context, status=status))


@never_cache
@require_http_methods(["GET", "POST"])
def verify_link(request: HttpRequest, token: str) -> HttpResponse:
    try:
        if request.method == "POST":
            erasure = identity.identity_confirm_link(token=token)
            return _no_referrer(render(request, "erasure/subject_verified.html", {"erasure": erasure}))
        challenge = identity.challenge_from_token(token)
    except IdentityProofError as exc:
        return _failed(request, exc, status=404 if exc.kind == "invalid" else 410)
    context = {"erasure": challenge.request, "token": token}
    return _no_referrer(render(request, "erasure/subject_verify_confirm.html", context))


@never_cache
@require_http_methods(["GET", "POST"])
def verify_code(request: HttpRequest) -> HttpResponse:
    reference = (request.POST.get("reference") or request.GET.get("reference") or "").strip()[:20]
    context: dict[str, Any] = {"reference": reference, "redirect_to": _safe_redirect(request)}
    if request.method == "POST":
        if (throttled := _throttled(request)) is not None:
            return throttled
        try:
            erasure = identity.identity_confirm_code(reference=reference, code=request.POST.get("code", ""))
        except IdentityProofError as exc:
            context["error"] = exc.message
            status = 429 if exc.kind == "locked" else 400
            return _no_referrer(render(request, "erasure/subject_verify_code.html", context, status=status))
        if context["redirect_to"] and erasure.channel == Channel.DRP:  # back to the agent (DRP 3.02.1) only
            return redirect(context["redirect_to"])
        return _no_referrer(render(request, "erasure/subject_verified.html", {"erasure": erasure}))
    return _no_referrer(render(request, "erasure/subject_verify_code.html", context))


def _safe_redirect(request: HttpRequest) -> str:
    """An agent's redirect_to (DRP 3.02.1), only an absolute http(s) URL."""
    value = (request.POST.get("redirect_to") or request.GET.get("redirect_to") or "").strip()
    parsed = urlparse(value)
    return value if parsed.scheme in ("https", "http") and parsed.netloc else ""


@never_cache
@require_http_methods(["GET"])
def verify_drp(request: HttpRequest, request_id: str) -> HttpResponse:
    """The DRP user_verification_url: tells the user we mailed them a link and a code, and takes the code."""
    try:
        drp = DrpRequest.objects.select_related("erasure").filter(request_id=request_id).first()
    except Exception:  # noqa: BLE001 - a malformed id
        drp = None
    if (
        drp is None
        or drp.erasure is None
        or (request.GET.get("request_id") not in (None, str(drp.request_id)))
    ):
        return _failed(request, IdentityProofError("invalid"), status=404)
    erasure = drp.erasure
    if erasure.identity_status != IdentityStatus.PENDING or erasure.state != State.RECEIVED:
        return _failed(request, IdentityProofError("closed"), status=410)
    context = {"reference": erasure.reference, "redirect_to": _safe_redirect(request), "from_agent": True}
    return _no_referrer(render(request, "erasure/subject_verify_code.html", context))


@never_cache
@require_POST
def verify_resend(request: HttpRequest, reference: str) -> HttpResponse:
    """A new link and code, for the holder of the secret status link, while the identity is still pending."""
    token = request.POST.get("token", "")
    erasure = selectors.erasure_request_by_status_token(reference=reference, token=token) if token else None
    if erasure is None:
        return _no_referrer(render(request, "erasure/subject_not_found.html", status=404))
    if (throttled := _throttled(request)) is not None:
        return throttled
    sent = erasure.identity_status == IdentityStatus.PENDING and erasure.state == State.RECEIVED
    if sent:
        identity.identity_challenge_create(request=erasure)
    return _no_referrer(
        render(request, "erasure/subject_verify_resent.html", {"erasure": erasure, "sent": sent})
    )
