"""Web-only safety nets: a statement timeout per web request, JSON error answers on the API paths, no-store and
a Content-Security-Policy on every page.

The statement timeout is set by the web request on the database connection it uses, once per connection (a
kept connection is only ever used by web requests of this process); Celery workers and management commands never
run middleware, so their connections keep PostgreSQL's default and an erasure's batches are never cancelled by the
web limit. A web query cancelled by it answers 503 with a body saying so instead of holding a backend busy after
the client gave up. Once per connection rather than SET/RESET around every request: two round trips per request
cost ~7 ms per /v1/ping/ on the loaded 2-core test machine (13.4 → 20.7 ms).
"""

import logging
import weakref
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, OperationalError, connection
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.views import defaults

logger = logging.getLogger(__name__)

API_PREFIXES = ("/v1/", "/v2/", "/v3/", "/api/")
MEMORY_API_PREFIXES = ("/v1/", "/v2/", "/v3/")


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIXES)


def api_error(path: str, message: str, status: int) -> JsonResponse:
    """The error body of the API a path belongs to: Mem0's {"error": …} on /v1–/v3, DRF's {"detail": …} on /api."""
    key = "error" if path.startswith(MEMORY_API_PREFIXES) else "detail"
    return JsonResponse({key: message}, status=status)


def is_query_cancelled(exc: BaseException) -> bool:
    """True for the error of a statement PostgreSQL cancelled (statement_timeout)."""
    if not isinstance(exc, OperationalError):
        return False
    try:
        from psycopg.errors import QueryCanceled
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    return isinstance(exc.__cause__, QueryCanceled)


# The timeout each open database connection (psycopg's, replaced on reconnect) was given.
_GIVEN: "weakref.WeakKeyDictionary[Any, int]" = weakref.WeakKeyDictionary()


def web_statement_timeout_apply(milliseconds: int) -> None:
    """SET statement_timeout on this thread's connection unless it already has that value. Side effects: opens
    the connection if needed; one statement per connection (none when the database is unreachable: the view
    meets, and answers, that itself)."""
    try:
        connection.ensure_connection()
        raw = connection.connection
        if raw is None or _GIVEN.get(raw) == milliseconds:
            return
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('statement_timeout', %s, false)", [f"{milliseconds}ms"])
        if not connection.in_atomic_block:  # a SET inside a transaction is undone by its rollback
            _GIVEN[raw] = milliseconds
    except DatabaseError:
        pass


class StatementTimeoutMiddleware:
    """statement_timeout = WEB_STATEMENT_TIMEOUT_MS on the connections web requests use (0 turns it off)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        milliseconds = int(getattr(settings, "WEB_STATEMENT_TIMEOUT_MS", 0) or 0)
        if milliseconds > 0:
            web_statement_timeout_apply(milliseconds)
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_query_cancelled(exception):
            return None
        milliseconds = int(getattr(settings, "WEB_STATEMENT_TIMEOUT_MS", 0) or 0)
        logger.warning("web request cancelled by the statement timeout", extra={"timeout_ms": milliseconds})
        message = (
            f"The request took longer than the database time limit ({milliseconds} ms) and was cancelled; "
            "narrow the filters or retry later."
        )
        response: HttpResponse
        if is_api_path(request.path):
            response = api_error(request.path, message, 503)
        else:
            response = HttpResponse(message, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = "5"
        return response


class SecurityHeadersMiddleware:
    """Content-Security-Policy on every response (pages use no inline script or style: keep it so), and
    Cache-Control: no-store on the privacy team's pages, which show personal data."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        policy = getattr(settings, "CONTENT_SECURITY_POLICY", "")
        if policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy
        if request.path.startswith(tuple(getattr(settings, "NO_STORE_PATH_PREFIXES", ()))):
            response["Cache-Control"] = "no-store, private"
        return response


def bad_request(request: HttpRequest, exception: Any = None) -> HttpResponse:
    """handler400: JSON on the API paths (a body over DATA_UPLOAD_MAX_MEMORY_SIZE is 413), Django's page elsewhere."""
    if not is_api_path(request.path):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return api_error(request.path, f"Request body is too large (more than {limit} bytes)", 413)
    return api_error(request.path, "Bad request", 400)
