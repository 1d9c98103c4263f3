"""One interface for every memory store an erasure reaches: the built-in store and connected Mem0 deployments.

A connector is built from a store's `config` (and its decrypted `secrets`, resolved only inside the worker). The
erasure workflow calls nothing else: `test`, `count`, `erase` (resumable, through an `EraseProgress`), `verify`.
Scopes are validated deletion scopes (memories.scope.validate_scope); `holds` are the scopes of the active legal
holds: a memory matching any of them is never erased and is counted as held.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol


@dataclasses.dataclass
class ScopeCount:
    """What a scope matches in one store: `total` would be erased, `held` is kept by an active hold."""

    total: int = 0
    held: int = 0
    by_agent: dict[str, int] = dataclasses.field(default_factory=dict)
    by_run: dict[str, int] = dataclasses.field(default_factory=dict)
    by_user: dict[str, int] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Residue:
    """What an erasure purged beside the memories themselves (text-bearing rows Mem0 leaves behind)."""

    history_rows: int = 0
    entity_rows: int = 0
    messages: int = 0

    def add(self, other: Residue) -> Residue:
        return Residue(
            self.history_rows + other.history_rows,
            self.entity_rows + other.entity_rows,
            self.messages + other.messages,
        )


class StoreError(Exception):
    """A store could not do what was asked. The message is shown to staff: it never carries personal data."""


class StoreUnavailable(StoreError):
    """Transient: the store is down, answered 5xx/429, or is locked by another process. Retried with backoff."""


class StoreLocked(StoreUnavailable):
    """Mem0's embedded Qdrant folder is held by another process (the application): stop it or use server mode."""


class StoreConfigError(StoreError):
    """The store's config is wrong (unknown provider, missing field): `field` names it. Not retried."""

    def __init__(self, message: str, field: str = "config"):
        super().__init__(message)
        self.field = field


class EraseProgress(Protocol):
    """The durable side of one store job, provided by the workflow.

    `state` is the connector's resume state as saved by the last checkpoint ({} on the first run). `checkpoint`
    records, in one durable step, the ids a batch deleted (idempotent: an id recorded before is not counted
    again), the new resume state and any residue purged, so a worker killed at any instant resumes with exact
    counts. `time_left` is the seconds left in this run's budget: a connector returns when it runs out.
    """

    state: dict[str, Any]

    def checkpoint(
        self, *, deleted_ids: Sequence[str] = (), state: dict[str, Any], residue: Residue | None = None
    ) -> None: ...

    def time_left(self) -> float: ...


class Connector(Protocol):
    kind: str

    def test(self) -> tuple[bool, str]:
        """Connects and answers (ok, a short human message without secrets)."""
        ...

    def count(self, scope: dict[str, Any], holds: Sequence[dict[str, Any]]) -> ScopeCount: ...

    def erase(self, scope: dict[str, Any], holds: Sequence[dict[str, Any]], progress: EraseProgress) -> bool:
        """Deletes what the scope matches (except held memories) and purges its residue; True when finished,
        False when the time budget ran out (the workflow calls again with the saved state)."""
        ...

    def verify(self, scope: dict[str, Any], holds: Sequence[dict[str, Any]]) -> dict[str, int]:
        """What still matches, per location (e.g. vectors, entities, history, messages); all 0 means verified.
        Held memories are not counted."""
        ...
