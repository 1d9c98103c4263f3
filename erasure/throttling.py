"""The public request form's rate limit, by DRF's throttling (a sliding window of timestamps in the cache).

The client is the address seen through REST_FRAMEWORK["NUM_PROXIES"] trusted proxies (env TRUSTED_PROXY_COUNT,
default 0: REMOTE_ADDR, X-Forwarded-For ignored, so a client cannot pick a fresh address by sending the header).
The cache key holds a keyed hash of the address, never the address in clear.
"""

import hashlib
import math
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from rest_framework.throttling import SimpleRateThrottle


def _address_key(address: str) -> str:
    return hashlib.sha256(f"{settings.SECRET_KEY}:form-ip:{address}".encode()).hexdigest()[:32]


class SubjectFormThrottle(SimpleRateThrottle):
    """POSTs of the subject form per client address: REST_FRAMEWORK's "subject_form" rate (env SUBJECT_FORM_RATE,
    "20/hour"), or a SUBJECT_FORM_RATE setting where one is set."""

    scope = "subject_form"

    def get_rate(self) -> str | None:
        rates: Any = settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES") or {}
        return getattr(settings, "SUBJECT_FORM_RATE", None) or rates.get(self.scope, "20/hour")

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": _address_key(self.get_ident(request) or "")}


def subject_form_throttle_hit(request: HttpRequest) -> int | None:
    """Counts one submission of the form from this client. None while within the rate; over it, the seconds
    until the next submission is allowed (for the Retry-After header)."""
    throttle = SubjectFormThrottle()
    # A page, not a DRF view: the throttle reads only the request's META and headers, which HttpRequest has.
    if throttle.allow_request(request, None):  # type: ignore[arg-type]
        return None
    return max(1, math.ceil(throttle.wait() or 1))


def subject_form_throttle_reset(address: str) -> None:
    """Forgets one address's submissions (tests, and staff unblocking a shared NAT)."""
    throttle = SubjectFormThrottle()
    cache.delete(throttle.cache_format % {"scope": throttle.scope, "ident": _address_key(address)})
