"""The Ed25519 key that signs deletion certificates, and offline signature checks.

Where the private key comes from, in order:
1. settings.CERTIFICATE_SIGNING_KEY — the PEM text itself (from the environment variable of the same name);
2. settings.CERTIFICATE_SIGNING_KEY_FILE — a path to a PEM file;
3. development only (DEBUG, or CERTIFICATE_SIGNING_KEY_AUTOGENERATE): generated once into
   VAR_DIR/signing-key.pem with mode 600, with a warning. Outside development a missing key is an error, because a
   key generated on a whim would make earlier certificates unverifiable with the published public key.
The key id is the sha256 of the public key's raw 32 bytes, in hex.
"""

import base64
import hashlib
import logging
import os
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)

ALGORITHM = "Ed25519"
DEV_KEY_NAME = "signing-key.pem"


class SignatureInvalid(Exception):
    """The signature does not verify, or the key or document is malformed. The message says which."""


def _dev_key_path() -> Path:
    return Path(settings.VAR_DIR) / DEV_KEY_NAME


def _load_private_pem(pem: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured("the certificate signing key must be an Ed25519 key")
    return key


def _generate_dev_key(path: Path) -> Ed25519PrivateKey:
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its key
        return _load_private_pem(path.read_bytes())
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    logger.warning(
        "generated a development certificate signing key; set CERTIFICATE_SIGNING_KEY in production",
        extra={"path": str(path)},
    )
    return key


@lru_cache(maxsize=1)
def signing_key() -> Ed25519PrivateKey:
    """The private key (cached for the process). Raises ImproperlyConfigured if none is configured."""
    pem = getattr(settings, "CERTIFICATE_SIGNING_KEY", "")
    if pem:
        return _load_private_pem(pem.encode() if isinstance(pem, str) else pem)
    key_file = getattr(settings, "CERTIFICATE_SIGNING_KEY_FILE", "")
    if key_file:
        return _load_private_pem(Path(key_file).read_bytes())
    path = _dev_key_path()
    if path.exists():
        return _load_private_pem(path.read_bytes())
    if settings.DEBUG or getattr(settings, "CERTIFICATE_SIGNING_KEY_AUTOGENERATE", False):
        return _generate_dev_key(path)
    raise ImproperlyConfigured(
        "set CERTIFICATE_SIGNING_KEY or CERTIFICATE_SIGNING_KEY_FILE to sign certificates"
    )


def public_key_pem(key: Ed25519PublicKey | None = None) -> str:
    key = key or signing_key().public_key()
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def key_id(key: Ed25519PublicKey | None = None) -> str:
    key = key or signing_key().public_key()
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def sign(message: bytes) -> str:
    """The base64 Ed25519 signature of message."""
    return base64.b64encode(signing_key().sign(message)).decode()


def load_public_key(pem: bytes | str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    except ValueError as exc:
        raise SignatureInvalid("the public key is not a valid PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureInvalid("the public key is not an Ed25519 key")
    return key


def signature_check(message: bytes, signature_b64: str, public_key: Ed25519PublicKey) -> None:
    """Raises SignatureInvalid unless signature_b64 is public_key's signature of message. Needs no settings."""
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (ValueError, TypeError) as exc:
        raise SignatureInvalid("the signature is not valid base64") from exc
    try:
        public_key.verify(signature, message)
    except InvalidSignature as exc:
        raise SignatureInvalid("the signature does not match the certificate") from exc
