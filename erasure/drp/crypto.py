"""DRP's signed messages (section 3.07): base64 of a libsodium "combined mode" buffer, the 64-byte Ed25519
signature followed by the JSON document; bearer tokens, random and stored only as sha256."""

import base64
import binascii
import hashlib
import json
import secrets
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey


class DrpMessageError(Exception):
    """A signed message that fails a check; `status` and `message` make the spec's error answer."""

    def __init__(self, status: int, message: str, *, fatal: bool = False):
        self.status = status
        self.message = message
        self.fatal = fatal
        super().__init__(message)


def decode(body: bytes) -> bytes:
    """Step 1: the message decodes from base64 into a binary buffer."""
    try:
        raw = base64.b64decode(body.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise DrpMessageError(
            400, "the body is not base64 (a signed message, Content-Type text/plain)"
        ) from None
    if len(raw) <= 64:
        raise DrpMessageError(400, "the signed message is too short to hold a signature and a document")
    return raw


def verify_key_valid(verify_key_b64: str) -> bool:
    try:
        return len(base64.b64decode(verify_key_b64, validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


def open_signed(raw: bytes, verify_key_b64: str) -> dict[str, Any]:
    """Step 2: the signature validates with the agent's registered key; returns the JSON document."""
    try:
        message = VerifyKey(base64.b64decode(verify_key_b64)).verify(raw)
    except (BadSignatureError, ValueError, TypeError):
        raise DrpMessageError(
            403, "the signature does not validate with the agent's registered key"
        ) from None
    try:
        document = json.loads(message)
    except (UnicodeDecodeError, ValueError):
        raise DrpMessageError(400, "the signed document is not JSON") from None
    if not isinstance(document, dict):
        raise DrpMessageError(400, "the signed document is not a JSON object")
    return document


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
