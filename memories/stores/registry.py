"""From a registered store to its connector, and the validation of a store's config per kind.

connector_for() is called only where the secrets may be decrypted: inside the worker, and for a connection test.
The mem0_oss connector (memories/stores/mem0_oss.py) is imported lazily: it needs mem0's vector-store classes.
"""

import importlib
from typing import Any

from .base import Connector, StoreConfigError
from .crypto import secrets_decrypt
from .models import Store

MEM0_OSS_MODULE = "memories.stores.mem0_oss"


def _mem0_oss_module() -> Any:
    return importlib.import_module(MEM0_OSS_MODULE)


def _mem0_oss_shape(config: Any) -> None:
    """The shape Memory.from_config() needs to reach the data (used when the connector gives no validator)."""
    if not isinstance(config, dict):
        raise StoreConfigError(
            "config must be a JSON object (the dict given to Memory.from_config())", "config"
        )
    vector_store = config.get("vector_store")
    if not isinstance(vector_store, dict):
        raise StoreConfigError("vector_store is required: {provider, config}", "config.vector_store")
    provider = vector_store.get("provider")
    if not isinstance(provider, str) or not provider:
        raise StoreConfigError("provider is required (e.g. qdrant, pgvector)", "config.vector_store.provider")
    if not isinstance(vector_store.get("config", {}), dict):
        raise StoreConfigError("must be a JSON object", "config.vector_store.config")
    history = config.get("history_db_path")
    if history is not None and (not isinstance(history, str) or not history):
        raise StoreConfigError("must be a file path", "config.history_db_path")


def validate_store_config(kind: str, config: Any, secrets: dict[str, Any] | None) -> None:
    """Raises StoreConfigError naming the field when `config` (with `secrets`) cannot serve a store of `kind`."""
    secrets = secrets or {}
    if kind == Store.Kind.BUILTIN:
        if config:
            raise StoreConfigError("the built-in store takes no config", "config")
        if secrets:
            raise StoreConfigError("the built-in store takes no secrets", "secrets")
    elif kind == Store.Kind.MEM0_PLATFORM:
        from .mem0_platform import validate_config

        validate_config(config, secrets)
    elif kind == Store.Kind.MEM0_OSS:
        try:
            module = _mem0_oss_module()
        except ImportError:
            module = None
        validator = getattr(module, "validate_config", None)
        if validator is not None:
            validator(config, secrets)
        else:
            _mem0_oss_shape(config)
    else:
        raise StoreConfigError(f"must be one of {', '.join(Store.Kind.values)}", "kind")


def connector_for(store: Store) -> Connector:
    """The connector of a store, with its secrets decrypted (in this process only)."""
    if store.kind == Store.Kind.BUILTIN:
        from .builtin import BuiltinConnector

        return BuiltinConnector()
    secrets = secrets_decrypt(store.secrets_encrypted)
    if store.kind == Store.Kind.MEM0_PLATFORM:
        from .mem0_platform import Mem0PlatformConnector

        return Mem0PlatformConnector(dict(store.config), secrets)
    if store.kind == Store.Kind.MEM0_OSS:
        connector: Connector = _mem0_oss_module().Mem0OssConnector(dict(store.config), secrets)
        return connector
    raise StoreConfigError(f"unknown store kind {store.kind!r}", "kind")
