"""Canonical JSON: the one byte form that is hashed (the audit chain) and signed (the certificate).

Keys sorted, separators (",", ":"), non-ASCII escaped, UTF-8; values JSON cannot hold (dates, UUIDs) as str.
Any reader can recompute it; the audit chain's SQL (erasure migration 0051) computes the same form.
"""

import json
from typing import Any


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()
