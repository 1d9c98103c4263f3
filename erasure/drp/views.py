"""The Covered Business endpoints of DRP 1.0 (section 2), with and without a trailing slash. Signed bodies are
read raw (Content-Type text/plain, or none at all); answers are JSON; errors are the spec's
{"code", "message", "fatal"} (section 3.06), except a failed pairing: 403 with no body (2.05.1)."""

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from . import services
from .crypto import DrpMessageError
from .status import drp_status

logger = logging.getLogger(__name__)

MAX_BODY = 64 * 1024


def error(status: int, message: str, *, fatal: bool = False) -> JsonResponse:
    return JsonResponse({"code": str(status), "message": message, "fatal": fatal}, status=status)


def _body(request: HttpRequest) -> bytes:
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > MAX_BODY:
        raise DrpMessageError(413, f"the signed message is larger than {MAX_BODY} bytes")
    return request.body


def _answer(call: Callable[[], HttpResponse]) -> HttpResponse:
    try:
        return call()
    except DrpMessageError as exc:
        logger.info("drp request refused", extra={"status": exc.status, "reason": exc.message})
        return error(exc.status, exc.message, fatal=exc.fatal)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def agent(request: HttpRequest, agent_id: str) -> HttpResponse:
    if request.method == "POST":
        try:
            paired, token = services.drp_pair(agent_id=agent_id, body=_body(request))
        except DrpMessageError as exc:
            logger.info("drp pairing refused", extra={"reason": exc.message})
            return HttpResponse(status=403)  # 2.05.1: no body
        return JsonResponse({"agent-id": paired.agent_id, "token": token})

    def info() -> HttpResponse:
        found = services.agent_for_bearer(request.META.get("HTTP_AUTHORIZATION", ""))
        if found.agent_id != agent_id:
            raise DrpMessageError(403, "the bearer token belongs to another agent")
        return JsonResponse({})

    return _answer(info)


@csrf_exempt
@require_http_methods(["POST"])
def exercise(request: HttpRequest) -> HttpResponse:
    def run() -> HttpResponse:
        found = services.agent_for_bearer(request.META.get("HTTP_AUTHORIZATION", ""))
        drp = services.drp_exercise(agent=found, body=_body(request))
        return JsonResponse(drp_status(drp))

    return _answer(run)


@csrf_exempt
@require_http_methods(["GET", "DELETE"])
def data_rights_request(request: HttpRequest, request_id: str) -> HttpResponse:
    def run() -> HttpResponse:
        found = services.agent_for_bearer(request.META.get("HTTP_AUTHORIZATION", ""))
        drp = services.drp_request_for(agent=found, request_id=request_id)
        if request.method == "DELETE":
            drp = services.drp_revoke(agent=found, drp=drp, body=_body(request))
        return JsonResponse(drp_status(drp))

    return _answer(run)
