"""The Ed25519 key that signs deletion certificates, and offline signature checks.

Where the private key comes from, in order:
1. settings.CERTIFICATE_SIGNING_KEY — the PEM text itself (from the environment variable of the same name);
2. settings.CERTIFICATE_SIGNING_KEY_FILE — a path to a PEM file;
3. development only (DEBUG, or CERTIFICATE_SIGNING_KEY_AUTOGENERATE): generated once into
   VAR_DIR/signing-key.pem with mode 600, with a warning. Outside development a missing key is an error, because a
   key generated on a whim would make earlier certificates unverifiable with the published public key.
The key id is the sha256 of the public key's raw 32 bytes, in hex.

Key rotation: the keys used before the current one are named in CERTIFICATE_SIGNING_KEY_PREVIOUS (PEM text holding
one or more public or private keys) and/or CERTIFICATE_SIGNING_KEY_PREVIOUS_FILE (a PEM bundle, or a directory of
*.pem files). Only their public halves are used: they are published beside the current key (published_keys(),
/.well-known/erasure-signing-key, export_public_key --all), so certificates signed before a rotation still verify
against the service's published keys by their key id.
"""

import base64
import hashlib
import logging
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

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
    key = configured_signing_key(generate=True)
    assert key is not None
    return key


def configured_signing_key(*, generate: bool) -> Ed25519PrivateKey | None:
    """The configured private key, without caching. With generate=False a missing key gives None instead of a new
    development key (for offline checks, which must never create keys)."""
    pem = getattr(settings, "CERTIFICATE_SIGNING_KEY", "")
    if pem:
        return _load_private_pem(pem.encode() if isinstance(pem, str) else pem)
    key_file = getattr(settings, "CERTIFICATE_SIGNING_KEY_FILE", "")
    if key_file:
        return _load_private_pem(Path(key_file).read_bytes())
    path = _dev_key_path()
    if path.exists():
        return _load_private_pem(path.read_bytes())
    if not generate:
        return None
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


_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----", re.S)


def load_public_keys(pem: bytes | str) -> dict[str, Ed25519PublicKey]:
    """Every Ed25519 key of a PEM bundle (public keys, or private keys whose public half is taken), by key id.
    Raises SignatureInvalid when the text holds no such key or a malformed one."""
    data = pem.encode() if isinstance(pem, str) else pem
    keys: dict[str, Ed25519PublicKey] = {}
    for match in _PEM_BLOCK.finditer(data):
        block, kind = match.group(0), match.group(1)
        if b"PRIVATE" in kind:
            try:
                private = serialization.load_pem_private_key(block, password=None)
            except (ValueError, TypeError) as exc:
                raise SignatureInvalid("a private key in the bundle cannot be read") from exc
            if not isinstance(private, Ed25519PrivateKey):
                raise SignatureInvalid("a key in the bundle is not an Ed25519 key")
            public = private.public_key()
        else:
            public = load_public_key(block)
        keys[key_id(public)] = public
    if not keys:
        raise SignatureInvalid("no PEM public key found")
    return keys


def _previous_keys() -> dict[str, Ed25519PublicKey]:
    keys: dict[str, Ed25519PublicKey] = {}
    text = getattr(settings, "CERTIFICATE_SIGNING_KEY_PREVIOUS", "")
    if text:
        keys.update(load_public_keys(text))
    source = getattr(settings, "CERTIFICATE_SIGNING_KEY_PREVIOUS_FILE", "")
    if source:
        path = Path(source)
        files = sorted(path.glob("*.pem")) if path.is_dir() else [path]
        for file in files:
            keys.update(load_public_keys(file.read_bytes()))
    return keys


def trusted_public_keys(*, generate: bool = False) -> dict[str, Ed25519PublicKey]:
    """The service's keys by key id: the current one first, then the previous ones. Empty when none is
    configured (and generate is False)."""
    keys: dict[str, Ed25519PublicKey] = {}
    current = configured_signing_key(generate=generate)
    if current is not None:
        keys[key_id(current.public_key())] = current.public_key()
    for kid, key in _previous_keys().items():
        keys.setdefault(kid, key)
    return keys


def published_keys() -> list[dict[str, Any]]:
    """What the service publishes: every key that verifies its certificates, the current one first and marked.
    Raises ImproperlyConfigured when no current key is configured (as signing would)."""
    current = key_id()
    keys = {current: signing_key().public_key(), **trusted_public_keys()}
    return [
        {"key_id": kid, "algorithm": ALGORITHM, "current": kid == current, "public_key": public_key_pem(key)}
        for kid, key in keys.items()
    ]
