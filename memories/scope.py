"""A deletion scope: the one shape in which callers tell the engine (and scoping/verification) which memories.

    {"user_id": "alice" | ["alice", "a2"], "agent_id": …, "app_id": …, "run_id": …,
     "metadata": {"k": "v"} (containment), "memory_ids": [uuid, …], "expired_before": "YYYY-MM-DD",
     "created_before": ISO 8601 date-time with an offset (a retention policy's cutoff)}

Every key narrows (AND); list values match any element. Each maps onto an index (DESIGN.md "Scale").
"""

import datetime
import uuid
from typing import Any

from django.db.models import Q, QuerySet

from .filters import contains_nul
from .models import ENTITY_FIELDS, Memory

SCOPE_KEYS = (*ENTITY_FIELDS, "metadata", "memory_ids", "expired_before", "created_before")


class ScopeError(ValueError):
    """A scope that names an unknown key or carries a value of the wrong shape (or a NUL character, which
    PostgreSQL cannot store or compare: such a scope would otherwise fail in the database)."""


NUL_REFUSED = "must not contain NUL characters (\\u0000)"


def validate_scope(scope: Any) -> dict[str, Any]:
    """Returns a normalised copy (lists sorted, ids as strings) or raises ScopeError naming the problem."""
    if not isinstance(scope, dict) or not scope:
        raise ScopeError("a deletion scope needs at least one of " + ", ".join(SCOPE_KEYS))
    clean: dict[str, Any] = {}
    for key, value in scope.items():
        if key not in SCOPE_KEYS:
            raise ScopeError(f"unknown scope key: {key}")
        if key in ENTITY_FIELDS:
            values = value if isinstance(value, list) else [value]
            if not values or not all(isinstance(v, str) and v for v in values):
                raise ScopeError(f"{key} must be a non-empty string or a list of them")
            if any("\x00" in v for v in values):
                raise ScopeError(f"{key} {NUL_REFUSED}")
            clean[key] = sorted(set(values)) if isinstance(value, list) else value
        elif key == "metadata":
            if not isinstance(value, dict) or not value:
                raise ScopeError("metadata must be a non-empty JSON object")
            if contains_nul(value):
                raise ScopeError(f"metadata {NUL_REFUSED}")
            clean[key] = value
        elif key == "memory_ids":
            if not isinstance(value, list) or not value:
                raise ScopeError("memory_ids must be a non-empty list")
            try:
                clean[key] = sorted({str(uuid.UUID(str(v))) for v in value})
            except ValueError as exc:
                raise ScopeError("memory_ids must hold valid UUIDs") from exc
        elif key == "expired_before":
            try:
                datetime.date.fromisoformat(str(value))
            except ValueError as exc:
                raise ScopeError("expired_before must be a date YYYY-MM-DD") from exc
            clean[key] = str(value)
        elif key == "created_before":
            try:
                moment = datetime.datetime.fromisoformat(str(value))
            except ValueError as exc:
                raise ScopeError("created_before must be an ISO 8601 date-time") from exc
            if moment.tzinfo is None:
                raise ScopeError("created_before must carry a UTC offset")
            clean[key] = moment.isoformat()
    return clean


def scope_q(scope: dict[str, Any]) -> Q:
    q = Q()
    for key, value in scope.items():
        if key in ENTITY_FIELDS:
            q &= Q(**{f"{key}__in": value}) if isinstance(value, list) else Q(**{key: value})
        elif key == "metadata":
            q &= Q(metadata__contains=value)
        elif key == "memory_ids":
            q &= Q(id__in=value)
        elif key == "expired_before":
            q &= Q(expiration_date__lt=value)
        elif key == "created_before":
            q &= Q(created_at__lt=value)
    return q


def scope_queryset(scope: dict[str, Any]) -> QuerySet[Memory]:
    """All memories in the scope, held or not."""
    return Memory.objects.filter(scope_q(validate_scope(scope)))
