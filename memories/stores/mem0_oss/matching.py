"""Which Mem0 OSS rows a deletion scope (and a legal hold) reaches, decided the same way for every backend.

Mem0 writes a memory's payload as its `metadata` flattened to the top level plus `user_id`/`agent_id`/`run_id`,
`actor_id`, `role`, `data`, `hash`, `created_at`/`updated_at`, `expiration_date` (see Memory._create_memory):
so a scope's `metadata` is a containment test on the whole payload, as PostgreSQL's jsonb `@>` does it.
"""

from __future__ import annotations

from typing import Any

IDENTITY_KEYS = ("user_id", "agent_id", "app_id", "run_id")
# Mem0 builds a session scope (and the entity rows' ids) from these only; it has no app_id.
SESSION_KEYS = ("user_id", "agent_id", "run_id")


def contains(haystack: Any, needle: Any) -> bool:
    """jsonb `@>`: objects by key subset, arrays by element containment, scalars by equality."""
    if isinstance(needle, dict):
        return isinstance(haystack, dict) and all(
            key in haystack and contains(haystack[key], value) for key, value in needle.items()
        )
    if isinstance(needle, list):
        if not isinstance(haystack, list):
            return False
        return all(any(contains(item, wanted) for item in haystack) for wanted in needle)
    if isinstance(haystack, bool) or isinstance(needle, bool):
        return haystack is needle
    return bool(haystack == needle)


def _values(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def point_matches(scope: dict[str, Any], point_id: str, payload: dict[str, Any]) -> bool:
    """True when a Mem0 memory (its id and payload) is inside the scope: every key narrows."""
    for key, value in scope.items():
        if key in IDENTITY_KEYS:
            if payload.get(key) not in _values(value):
                return False
        elif key == "metadata":
            if not contains(payload, value):
                return False
        elif key == "memory_ids":
            if str(point_id) not in value:
                return False
        elif key == "expired_before":
            expiry = payload.get("expiration_date")
            if not expiry or str(expiry)[:10] >= value:
                return False
    return True


def held(holds: list[dict[str, Any]], point_id: str, payload: dict[str, Any]) -> bool:
    return any(point_matches(hold, point_id, payload) for hold in holds)


def payload_keys(scope: dict[str, Any], holds: list[dict[str, Any]]) -> list[str]:
    """The payload keys needed to decide scope and holds (never `data`: the text is not read)."""
    keys = set(SESSION_KEYS) | {"app_id", "expiration_date"}
    for item in [scope, *holds]:
        keys.update(item.get("metadata", {}).keys())
    return sorted(keys)


def identity_filters(scope: dict[str, Any]) -> list[dict[str, str]]:
    """The scope's identity keys as plain equality filters Mem0's vector stores all accept: one dict per
    combination of the listed values (most scopes name one subject, so one dict)."""
    combos: list[dict[str, str]] = [{}]
    for key in IDENTITY_KEYS:
        if key in scope:
            combos = [{**combo, key: value} for combo in combos for value in _values(scope[key])]
    return combos


def whole_identity(scope: dict[str, Any]) -> bool:
    """A scope that names people/agents/runs only (no metadata, ids or expiry narrowing): their chat turns go too."""
    return bool(scope) and all(key in SESSION_KEYS for key in scope)


# --- Mem0's session scope (memory/main.py _build_session_scope), read back -------------------------------------


def build_session_scope(ids: dict[str, Any]) -> str:
    try:  # the exact function Mem0 uses, so the strings always agree
        from mem0.memory.main import _build_session_scope

        return str(_build_session_scope(ids))
    except ImportError:  # pragma: no cover - mem0ai is a dependency; this mirrors 2.2.1
        parts = []
        for key in sorted(SESSION_KEYS):
            if ids.get(key):
                value = str(ids[key]).replace("%", "%25").replace("&", "%26").replace("=", "%3D")
                parts.append(f"{key}={value}")
        return "&".join(parts)


def parse_session_scope(session_scope: str) -> dict[str, str] | None:
    """`agent_id=a&user_id=u%26v` → {"agent_id": "a", "user_id": "u&v"}; None when it is not Mem0's shape."""
    ids: dict[str, str] = {}
    for part in (session_scope or "").split("&"):
        key, sep, value = part.partition("=")
        if not sep or key not in SESSION_KEYS:
            return None
        ids[key] = value.replace("%3D", "=").replace("%26", "&").replace("%25", "%")
    return ids or None


def session_matches(scope: dict[str, Any], ids: dict[str, str]) -> bool:
    """A chat session belongs to the scope when every identity key the scope names matches the session's id.
    (A session has no app_id: a scope or hold naming one does not reach chat turns.)"""
    keys = [key for key in IDENTITY_KEYS if key in scope]
    return bool(keys) and all(ids.get(key) in _values(scope[key]) for key in keys)
