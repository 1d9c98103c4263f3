"""Legal holds as rules. Placeholder: the engine branch (issue 13, "legal holds as rules") provides the real
active_hold_scopes(); the lead takes that one at merge."""

from typing import Any


def active_hold_scopes() -> list[dict[str, Any]]:
    """The scopes of the active legal holds, in clear (deletion-scope shape), for connectors to skip and count.
    Until the engine branch is merged, holds are placed on memories of the built-in store only: none here."""
    return []
