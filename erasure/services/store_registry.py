"""Writes of the store registry (CONTRACT.md "Connected memory stores"): add, change, disable and test a store.

Secrets are write-only: encrypted here (memories/stores/crypto.py), never returned; audit entries name the store,
its kind, the config keys and whether secrets are set, never a config value or a secret.
"""

import re
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from memories.filters import contains_nul
from memories.models import Store, StoreJob
from memories.scope import NUL_REFUSED
from memories.stores.base import StoreConfigError, StoreError
from memories.stores.crypto import secrets_decrypt, secrets_encrypt
from memories.stores.registry import connector_for, validate_store_config

from ..audit import audit_append
from .errors import ErasureInputError

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
# Keys that hold credentials: they go in `secrets`, never in `config` (which is shown and audited by key).
SECRET_KEY_RE = re.compile(r"(pass(word)?|secret|api_?key|token|credential|private_?key)$", re.IGNORECASE)
_UNSET: Any = object()


class StoreBusy(Exception):
    """The store has an erasure running (or failed and waiting for a retry): it cannot be changed now (409)."""

    def __init__(self, store: Store, message: str = ""):
        self.store = store
        self.message = (
            message or f"store {store.name} has an erasure in progress; change it once it has finished"
        )
        super().__init__(self.message)


def _refuse_secrets_in_config(value: Any, path: str = "config") -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if SECRET_KEY_RE.search(str(key)) and item not in (None, ""):
                raise ErasureInputError(f"{path}.{key}", "credentials go in secrets, not in config")
            _refuse_secrets_in_config(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_secrets_in_config(item, f"{path}[{index}]")
    elif isinstance(value, str) and re.match(
        r"^[a-z][a-z0-9+.-]*://[^/@\s:]*:[^/@\s]+@", value, re.IGNORECASE
    ):
        raise ErasureInputError(path, "a URL with a password: put this value in secrets instead")


def _validate(kind: str, config: Any, secrets: dict[str, Any] | None) -> None:
    if not isinstance(config, dict):
        raise ErasureInputError("config", "must be a JSON object")
    if secrets is not None and not isinstance(secrets, dict):
        raise ErasureInputError("secrets", "must be a JSON object")
    if contains_nul(config):
        raise ErasureInputError("config", NUL_REFUSED)
    if secrets and contains_nul(secrets):
        raise ErasureInputError("secrets", NUL_REFUSED)
    _refuse_secrets_in_config(config)
    try:
        validate_store_config(kind, config, secrets)
    except StoreConfigError as exc:
        raise ErasureInputError(exc.field, str(exc)) from None


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ErasureInputError("name", "1–64 characters: lower-case letters, digits, '.', '_' or '-'")
    return name


def store_is_busy(store: Store) -> bool:
    """An erasure job of this store has not finished, or failed and waits for a retry."""
    return StoreJob.objects.filter(store=store, status__in=[*StoreJob.OPEN, StoreJob.Status.FAILED]).exists()


def _audit_data(store: Store, **extra: Any) -> dict[str, Any]:
    return {
        "store": str(store.id),
        "name": store.name,
        "kind": store.kind,
        "enabled": store.enabled,
        "config_keys": sorted(store.config or {}),
        "secrets_set": store.has_secrets,
        **extra,
    }


@transaction.atomic
def store_create(
    *,
    name: str,
    kind: str,
    config: dict[str, Any],
    secrets: dict[str, Any] | None,
    actor: str,
    enabled: bool = True,
) -> Store:
    """Registers a connected store. Raises ErasureInputError naming the field (name, kind, config.…, secrets.…).
    Side effects: one Store row (secrets encrypted), one audit entry."""
    _check_name(name)
    if kind not in (Store.Kind.MEM0_OSS, Store.Kind.MEM0_PLATFORM):
        raise ErasureInputError("kind", f"must be {Store.Kind.MEM0_OSS} or {Store.Kind.MEM0_PLATFORM}")
    _validate(kind, config, secrets or {})
    if Store.objects.filter(name=name).exists():
        raise ErasureInputError("name", "a store with this name exists")
    try:
        with transaction.atomic():
            store = Store.objects.create(
                name=name,
                kind=kind,
                config=config,
                secrets_encrypted=secrets_encrypt(secrets),
                enabled=enabled,
            )
    except IntegrityError:
        raise ErasureInputError("name", "a store with this name exists") from None
    audit_append(actor=actor, action="store.created", data=_audit_data(store))
    return store


@transaction.atomic
def store_update(
    *,
    store: Store,
    actor: str,
    name: Any = _UNSET,
    config: Any = _UNSET,
    secrets: Any = _UNSET,
    enabled: Any = _UNSET,
) -> Store:
    """Changes what is given (secrets replace the stored ones as a whole; {} clears them). The built-in store
    keeps its name, takes no config and is always enabled. Raises ErasureInputError, or StoreBusy while an
    erasure of the store is unfinished (config, secrets, disabling). Side effects: the row, one audit entry."""
    store = Store.objects.select_for_update().get(id=store.id)
    if store.is_builtin:
        if (name is not _UNSET and name != store.name) or (enabled is not _UNSET and not enabled):
            raise StoreBusy(store, "the built-in store is always present and enabled")
        if config not in (_UNSET, {}) or secrets not in (_UNSET, {}, None):
            raise ErasureInputError("config", "the built-in store takes no config or secrets")
        return store
    changed: list[str] = []
    if name is not _UNSET and name != store.name:
        _check_name(name)
        if Store.objects.filter(name=name).exclude(id=store.id).exists():
            raise ErasureInputError("name", "a store with this name exists")
        store.name = name
        changed.append("name")
    touches_erasure = config is not _UNSET or secrets is not _UNSET or (enabled is not _UNSET and not enabled)
    if touches_erasure and store_is_busy(store):
        raise StoreBusy(store)
    if config is not _UNSET or secrets is not _UNSET:
        new_config = store.config if config is _UNSET else config
        if secrets is _UNSET:
            new_secrets = secrets_decrypt(store.secrets_encrypted)
        else:
            new_secrets = secrets or {}
        _validate(store.kind, new_config, new_secrets)
        if config is not _UNSET:
            store.config = new_config
            changed.append("config")
        if secrets is not _UNSET:
            store.secrets_encrypted = secrets_encrypt(new_secrets)
            changed.append("secrets_encrypted")
        store.last_check_ok, store.last_check_detail, store.last_check_at = None, "", None
        changed += ["last_check_ok", "last_check_detail", "last_check_at"]
    if enabled is not _UNSET and bool(enabled) != store.enabled:
        store.enabled = bool(enabled)
        changed.append("enabled")
    if changed:
        store.save(update_fields=[*changed, "updated_at"])
        audit_append(
            actor=actor,
            action="store.updated",
            data=_audit_data(
                store,
                changed=[c.replace("_encrypted", "") for c in changed if not c.startswith("last_check")],
            ),
        )
    return store


def store_disable(*, store: Store, actor: str) -> Store:
    """DELETE /api/v1/stores/{id}/: the store is disabled (kept, with its jobs, for the proofs that name it).
    Raises StoreBusy for the built-in store or while an erasure of the store is unfinished."""
    if store.is_builtin:
        raise StoreBusy(store, "the built-in store is always present and enabled")
    return store_update(store=store, actor=actor, enabled=False)


def store_test(*, store: Store, actor: str) -> tuple[bool, str]:
    """Connects to the store and records the outcome (last_check_*). Never raises for a store's failure: the
    answer is (False, a message without secrets). Side effects: the row's last_check fields, one audit entry."""
    try:
        connector = connector_for(store)
        try:
            ok, detail = connector.test()
        finally:
            close = getattr(connector, "close", None)
            if close is not None:
                close()
    except StoreError as exc:
        ok, detail = False, str(exc)
    except Exception as exc:  # noqa: BLE001 - a connector's bug or a library's error: its class, never its text
        ok, detail = False, f"the connection test failed ({type(exc).__name__})"
    detail = (detail or "")[:300]
    now = timezone.now()
    with transaction.atomic():
        Store.objects.filter(id=store.id).update(
            last_check_ok=ok, last_check_detail=detail, last_check_at=now
        )
        audit_append(
            actor=actor, action="store.tested", data={"store": str(store.id), "name": store.name, "ok": ok}
        )
    store.last_check_ok, store.last_check_detail, store.last_check_at = ok, detail, now
    return ok, detail
