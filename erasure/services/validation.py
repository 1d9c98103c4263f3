"""Checks of the input of the erasure services: a bad value raises ErasureInputError naming the field."""

from typing import Any

from memories.scope import NUL_REFUSED, ScopeError, validate_scope

from .errors import ErasureInputError

NARROWING_KEYS = ("agent_id", "app_id", "run_id", "metadata")
# One request names at most this many user ids, each at most this long (API, console and public form alike).
MAX_USER_IDS = 100
MAX_USER_ID_LENGTH = 255


def clean_subject(user_ids: Any, email: str) -> tuple[list[str], str]:
    """The request's user_ids (stripped, de-duplicated, sorted) and e-mail (stripped). A request may name only an
    e-mail: its user ids are attached once the identity is verified (erasure/identity.py)."""
    if user_ids is None:
        user_ids = []
    if not isinstance(user_ids, list | tuple):
        raise ErasureInputError("user_ids", "must be a list of user ids")
    if not user_ids and not (email or "").strip():
        raise ErasureInputError("user_ids", "give at least one user_id, or an email")
    if len(user_ids) > MAX_USER_IDS:
        raise ErasureInputError("user_ids", f"at most {MAX_USER_IDS} user_ids per request")
    if not all(isinstance(u, str) and u.strip() for u in user_ids):
        raise ErasureInputError("user_ids", "each user_id must be a non-empty string")
    refuse_nul("user_ids", *user_ids)
    refuse_nul("email", email or "")
    clean = sorted({u.strip() for u in user_ids})
    if any(len(u) > MAX_USER_ID_LENGTH for u in clean):
        raise ErasureInputError("user_ids", f"a user_id is at most {MAX_USER_ID_LENGTH} characters")
    email = (email or "").strip()
    if email and ("@" not in email or len(email) > 254):
        raise ErasureInputError("email", "not a valid e-mail address")
    return clean, email


def refuse_nul(field: str, *values: str) -> None:
    """PostgreSQL cannot store NUL in text: such input would fail in the database as a 500. (Scopes are checked
    by validate_scope.)"""
    if any("\x00" in value for value in values):
        raise ErasureInputError(field, NUL_REFUSED)


def clean_scope(scope: Any) -> dict[str, Any]:
    """A request's narrowing scope (only NARROWING_KEYS; empty for none), validated like the engine's."""
    if not scope:
        return {}
    if not isinstance(scope, dict):
        raise ErasureInputError("scope", "must be an object")
    unknown = sorted(set(scope) - set(NARROWING_KEYS))
    if unknown:
        raise ErasureInputError("scope", f"unknown key {unknown[0]}; allowed: {', '.join(NARROWING_KEYS)}")
    try:
        return validate_scope(scope)
    except ScopeError as exc:
        raise ErasureInputError("scope", str(exc)) from None
