"""Encryption at rest of connected stores' secrets (API keys, passwords): Fernet (AES-128-CBC + HMAC-SHA256).

The key comes from, in order:
1. STORE_SECRETS_KEY (environment or settings): a Fernet key (urlsafe base64 of 32 bytes); several keys separated
   by commas rotate (the first encrypts, all decrypt);
2. development only (DEBUG, or the development secret key as for the certificate signing key): generated once
   into VAR_DIR/store-secrets.key with mode 600, with a warning. Elsewhere a missing key is an error: a key made
   up on the spot would leave the stored secrets unreadable after the next restart.
Secrets are decrypted only inside the worker (and for a connection test): never returned, logged or put in a task
argument, an exception message or an audit row.
"""

import json
import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)

DEV_KEY_NAME = "store-secrets.key"


class SecretsUnreadable(Exception):
    """The stored secrets cannot be decrypted with the configured key (it changed, or the row was altered)."""


def _configured_keys() -> str:
    return str(getattr(settings, "STORE_SECRETS_KEY", "") or os.environ.get("STORE_SECRETS_KEY", ""))


def _autogenerate_allowed() -> bool:
    explicit = os.environ.get("STORE_SECRETS_KEY_AUTOGENERATE")
    if explicit is not None:
        return explicit.strip().lower() in ("1", "true", "yes", "on")
    return bool(settings.DEBUG or getattr(settings, "CERTIFICATE_SIGNING_KEY_AUTOGENERATE", False))


def _dev_key(path: Path) -> bytes:
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its key
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    logger.warning(
        "generated a development key for store secrets; set STORE_SECRETS_KEY in production",
        extra={"path": str(path)},
    )
    return key


@lru_cache(maxsize=1)
def _fernet() -> MultiFernet:
    configured = _configured_keys()
    if configured:
        try:
            return MultiFernet([Fernet(k.strip().encode()) for k in configured.split(",") if k.strip()])
        except ValueError as exc:
            raise ImproperlyConfigured(
                "STORE_SECRETS_KEY must hold Fernet keys (urlsafe base64, 32 bytes)"
            ) from exc
    if not _autogenerate_allowed():
        raise ImproperlyConfigured("set STORE_SECRETS_KEY to store the secrets of connected memory stores")
    return MultiFernet([Fernet(_dev_key(Path(settings.VAR_DIR) / DEV_KEY_NAME))])


def secrets_encrypt(secrets: dict[str, Any] | None) -> str:
    """The Fernet token of the secrets as JSON; "" for no secrets."""
    if not secrets:
        return ""
    return _fernet().encrypt(json.dumps(secrets, sort_keys=True).encode("utf-8")).decode("ascii")


def secrets_decrypt(token: str) -> dict[str, Any]:
    """The secrets of a token made by secrets_encrypt ({} for ""). Raises SecretsUnreadable (no detail)."""
    if not token:
        return {}
    try:
        value = json.loads(_fernet().decrypt(token.encode("ascii")))
    except (InvalidToken, ValueError):
        raise SecretsUnreadable("the store's secrets cannot be decrypted with the configured key") from None
    return value if isinstance(value, dict) else {}
