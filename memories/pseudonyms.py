"""Keyed hashes (HMAC-SHA256 with settings.PSEUDONYM_KEY) of subject identifiers: matchable later, never reversible."""

import hashlib
import hmac
from typing import Any

from django.conf import settings

from .models import ENTITY_FIELDS


def pseudonym(value: str) -> str:
    return hmac.new(settings.PSEUDONYM_KEY.encode(), str(value).encode("utf-8"), hashlib.sha256).hexdigest()


def pseudonymise_scope(scope: dict[str, Any] | None) -> dict[str, Any]:
    """The same scope with every identifier or value replaced by its keyed hash; memory ids become a count."""
    if not scope:
        return {}
    out: dict[str, Any] = {}
    for key, value in scope.items():
        if key in ENTITY_FIELDS:
            values = value if isinstance(value, list) else [value]
            out[key] = sorted(pseudonym(v) for v in values)
        elif key == "metadata":
            out[key] = {pseudonym(k): pseudonym(repr(v)) for k, v in (value or {}).items()}
        elif key == "memory_ids":
            out["memory_ids_count"] = len(value)
        else:
            out[key] = value
    return out
