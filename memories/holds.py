"""Legal holds as the engine and the connected stores see them."""

from typing import Any

from .models import Memory
from .scope import scope_q


def held_count(scope: dict[str, Any]) -> int:
    """How many memories of the scope are held."""
    return Memory.objects.filter(scope_q(scope), legal_hold__isnull=False).count()
