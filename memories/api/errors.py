"""Mem0-style `{"error": …}` bodies for the memory API (DRF's shape elsewhere), and the error helpers views use."""

from typing import Any

from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

MEMORY_API_PREFIXES = ("/v1/", "/v2/", "/v3/")

MEMORY_NOT_FOUND = "Memory not found!"
INVALID_MEMORY_ID = "memory_id should be a valid UUID"
ERASURE_IN_PROGRESS = (
    "An erasure request is in progress for this user_id; new memories are refused until it completes."
)
SUPPRESSED = (
    "Memories for this user_id were erased and suppressed at the data subject's request; "
    "new memories in the erased scope are refused until the privacy team lifts the suppression."
)
IMMUTABLE = "Memory is immutable and cannot be updated. Delete it and add a new memory instead."
HELD = "Memory is under a legal hold and cannot be deleted until the hold is lifted."


def error(message: str, code: int = status.HTTP_400_BAD_REQUEST, **extra: Any) -> Response:
    return Response({"error": message, **extra}, status=code)


def write_blocked(kind: str) -> Response:
    """409 for both kinds, with the reason in the body: Mem0's client shows a 403 as an AuthenticationError (a bad
    key), and a 409 as a ValidationError carrying this message."""
    if kind == "suppression":
        return error(SUPPRESSED, status.HTTP_409_CONFLICT, reason="suppressed")
    return error(ERASURE_IN_PROGRESS, status.HTTP_409_CONFLICT, reason="erasure_in_progress")


def _first_message(data: Any, path: str = "") -> str:
    """'field: message' for the first error of a DRF ValidationError's nested detail."""
    if isinstance(data, dict):
        for key, value in data.items():
            name = key if key != "non_field_errors" else ""
            return _first_message(value, f"{path}.{name}" if path and name else (name or path))
    if isinstance(data, list) and data:
        for index, item in enumerate(data):
            if item:
                if isinstance(item, dict | list):
                    return _first_message(item, f"{path}[{index}]")
                return f"{path}: {item}" if path else str(item)
    return f"{path}: invalid" if path else "invalid request"


def exception_handler(exc, context):
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    request = context.get("request")
    path = getattr(request, "path", "") or ""
    if not path.startswith(MEMORY_API_PREFIXES):
        return response
    if isinstance(exc, ValidationError):
        response.data = {"error": _first_message(response.data), "details": response.data}
    elif isinstance(response.data, dict) and "detail" in response.data:
        response.data = {"error": str(response.data["detail"]), "detail": response.data["detail"]}
    return response
