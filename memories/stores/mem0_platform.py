"""Connector for Mem0 Platform or any Mem0-compatible REST service (another instance of this service included).

config: {"host": URL, optional "org_id", "project_id", "timeout" (s), "retries", "backoff" (s), "batch_size"
(ids per DELETE /v1/batch/ call, at most 1,000)};
secrets: {"api_key": …} (sent as `Authorization: Token …`).

Counting pages `POST /v3/memories/` (200 a page, expired memories included). Erasing lists the scope first (the ids
are the job's record: its exact count and digest), then deletes either with Mem0's own asynchronous delete
(`DELETE /v1/memories/?user_id=…`, polled through `GET /v1/event/{id}/`) when the scope is entity ids only and no
listed memory is held, or otherwise (a metadata-narrowed scope, held memories, a FAILED event) with
`DELETE /v1/batch/` of the unheld ids, at most 1,000 a call. Each step is checkpointed, so a killed worker resumes
without losing or double-counting an id. 429 answers wait for their Retry-After; timeouts, connection errors and
5xx are retried with exponential backoff, then StoreUnavailable. An empty subject id or "*" is refused before any
call: on Mem0 Platform "*" means every user.

What stays outside our reach is the vendor's own history of the memories and its backups (OUTSIDE_REACH).
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import httpx

from .base import EraseProgress, ScopeCount, StoreConfigError, StoreError, StoreUnavailable

logger = logging.getLogger(__name__)
# httpx logs every request line at INFO, query string included (a subject's user_id): never let it through.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)

ENTITY_KEYS = ("user_id", "agent_id", "app_id", "run_id")
CONFIG_KEYS = ("host", "org_id", "project_id", "timeout", "retries", "backoff", "batch_size")
PAGE_SIZE = 200
BATCH_LIMIT = 1000
MAX_RETRY_AFTER = 60.0
MAX_PASSES = 3
NONE_KEY = ""
OUTSIDE_REACH = (
    "The service's own history of the erased memories (its memory history and event logs) and its backups are "
    "kept by the vendor under its retention policy; this service cannot erase or inspect them."
)


def validate_config(config: Any, secrets: Any) -> None:
    """Raises StoreConfigError naming the field (config.host, secrets.api_key, …)."""
    if not isinstance(config, dict):
        raise StoreConfigError("config must be a JSON object", "config")
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        raise StoreConfigError(f"unknown key {unknown[0]!r} (allowed: {', '.join(CONFIG_KEYS)})", "config")
    host = config.get("host")
    if not isinstance(host, str) or not host:
        raise StoreConfigError("host is required: the service's base URL", "config.host")
    parsed = urlparse(host)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise StoreConfigError("host must be an http(s) URL such as https://api.mem0.ai", "config.host")
    if parsed.username or parsed.password:
        raise StoreConfigError("host must not carry credentials: put the API key in secrets", "config.host")
    for key in ("org_id", "project_id"):
        if key in config and not isinstance(config[key], str):
            raise StoreConfigError(f"{key} must be a string", f"config.{key}")
    for key, low, high in (
        ("timeout", 0.1, 600),
        ("retries", 0, 20),
        ("backoff", 0, 60),
        ("batch_size", 1, BATCH_LIMIT),
    ):
        value = config.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high
        ):
            raise StoreConfigError(f"{key} must be a number from {low} to {high}", f"config.{key}")
    if not isinstance(secrets, dict) or not isinstance(secrets.get("api_key"), str) or not secrets["api_key"]:
        raise StoreConfigError("api_key is required", "secrets.api_key")
    unknown = sorted(set(secrets) - {"api_key"})
    if unknown:
        raise StoreConfigError(f"unknown key {unknown[0]!r} (allowed: api_key)", "secrets")


def _values(scope: dict[str, Any], key: str) -> list[str]:
    value = scope.get(key)
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def refuse_unsafe_scope(scope: dict[str, Any]) -> None:
    """An erasure needs a subject: at least one user_id, none empty or "*" (Mem0 Platform's "all users")."""
    if not _values(scope, "user_id"):
        raise StoreError("refused: the scope names no subject user_id")
    for key in ENTITY_KEYS:
        for value in _values(scope, key):
            if not isinstance(value, str) or not value.strip() or value.strip() == "*":
                raise StoreError(f"refused: an empty or '*' {key} would reach every subject on Mem0 Platform")


def scope_filters(scope: dict[str, Any]) -> dict[str, Any]:
    """The scope in Mem0's v2 filter grammar (every key ANDed; a list of ids as `in`)."""
    parts: list[dict[str, Any]] = []
    for key in ENTITY_KEYS:
        values = _values(scope, key)
        if values:
            parts.append({key: {"in": values}} if isinstance(scope[key], list) else {key: values[0]})
    if scope.get("metadata"):
        parts.append({"metadata": scope["metadata"]})
    if scope.get("memory_ids"):
        parts.append({"memory_ids": list(scope["memory_ids"])})
    if scope.get("expired_before"):
        parts.append({"expiration_date": {"lt": scope["expired_before"]}})
    return {"AND": parts}


def _contains(haystack: Any, needle: Any) -> bool:
    """JSON containment (PostgreSQL's @>), as the built-in store matches metadata."""
    if isinstance(needle, dict):
        return isinstance(haystack, dict) and all(
            k in haystack and _contains(haystack[k], v) for k, v in needle.items()
        )
    if isinstance(needle, list):
        return isinstance(haystack, list) and all(any(_contains(h, n) for h in haystack) for n in needle)
    return bool(haystack == needle)


def matches(memory: dict[str, Any], scope: dict[str, Any]) -> bool:
    """Whether a listed memory falls in a scope (used for holds: every key must match)."""
    for key in ENTITY_KEYS:
        values = _values(scope, key)
        if values and memory.get(key) not in values:
            return False
    if scope.get("metadata") and not _contains(memory.get("metadata") or {}, scope["metadata"]):
        return False
    if scope.get("memory_ids") and str(memory.get("id")) not in {str(i) for i in scope["memory_ids"]}:
        return False
    if scope.get("expired_before"):
        expiry = memory.get("expiration_date")
        if not expiry or str(expiry)[:10] >= str(scope["expired_before"]):
            return False
    return True


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class Mem0PlatformConnector:
    kind = "mem0_platform"

    def __init__(self, config: dict[str, Any], secrets: dict[str, Any]):
        validate_config(config, secrets)
        self.host = config["host"].rstrip("/")
        self.params = {k: config[k] for k in ("org_id", "project_id") if config.get(k)}
        self.retries = int(config.get("retries", 5))
        self.backoff = float(config.get("backoff", 1.0))
        self.batch_size = int(config.get("batch_size", BATCH_LIMIT))
        self._client = httpx.Client(
            base_url=self.host,
            headers={"Authorization": f"Token {secrets['api_key']}", "Accept": "application/json"},
            timeout=float(config.get("timeout", 30.0)),
            follow_redirects=False,
        )

    def __repr__(self) -> str:  # never the key
        return f"Mem0PlatformConnector(host={self.host!r})"

    def close(self) -> None:
        self._client.close()

    # --- HTTP ------------------------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        allow: tuple[int, ...] = (),
    ) -> httpx.Response:
        """One call with retries. Messages name the method, the path (no query: it holds subject ids) and the
        status; never a response body or an exception text (they may echo the request)."""
        last = "no answer"
        for attempt in range(self.retries + 1):
            wait = min(self.backoff * 2**attempt, 30.0)
            try:
                response = self._client.request(
                    method, path, params={**self.params, **(params or {})}, json=body
                )
            except httpx.TimeoutException:
                last = "timed out"
            except httpx.TransportError:
                last = "connection failed"
            else:
                code = response.status_code
                if code == 429:
                    last = "HTTP 429 (rate limited)"
                    after = _retry_after(response)
                    wait = min(after if after is not None else wait, MAX_RETRY_AFTER)
                elif code >= 500:
                    last = f"HTTP {code}"
                elif code in (401, 403):
                    raise StoreError(f"the store refused the API key (HTTP {code} to {method} {path})")
                elif code >= 400 and code not in allow:
                    raise StoreError(f"the store answered HTTP {code} to {method} {path}")
                else:
                    return response
            if attempt < self.retries:
                logger.info("store call retried", extra={"path": path, "attempt": attempt + 1, "wait": wait})
                time.sleep(wait)
        raise StoreUnavailable(f"{method} {path}: {last} after {self.retries + 1} attempts")

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise StoreError(
                f"the store answered something other than JSON to {response.request.url.path}"
            ) from None

    # --- reads -----------------------------------------------------------------------------------------------

    def _list(self, scope: dict[str, Any]) -> list[dict[str, Any]]:
        """Every memory the scope matches (expired ones included), page by page."""
        refuse_unsafe_scope(scope)
        found: dict[str, dict[str, Any]] = {}
        page = 1
        while True:
            data = self._json(
                self._call(
                    "POST",
                    "/v3/memories/",
                    params={"page": page, "page_size": PAGE_SIZE},
                    body={"filters": scope_filters(scope), "show_expired": True},
                )
            )
            results = data.get("results") if isinstance(data, dict) else data
            if not isinstance(results, list):
                raise StoreError("the store's memory list has no results")
            for memory in results:
                if isinstance(memory, dict) and memory.get("id") is not None:
                    found.setdefault(str(memory["id"]), memory)
            if not results or not (isinstance(data, dict) and data.get("next")):
                return list(found.values())
            page += 1

    def test(self) -> tuple[bool, str]:
        try:
            response = self._call("GET", "/v1/ping/")
        except StoreError as exc:
            return False, str(exc)
        data = self._json(response)
        if not isinstance(data, dict) or data.get("status") != "ok":
            return False, "the store answered the ping without status ok"
        return True, f"connected to {urlparse(self.host).netloc}"

    def count(self, scope: dict[str, Any], holds: Sequence[dict[str, Any]]) -> ScopeCount:
        result = ScopeCount()
        for memory in self._list(scope):
            result.total += 1
            if any(matches(memory, hold) for hold in holds if hold):
                result.held += 1
            agent = memory.get("agent_id") or NONE_KEY
            run = memory.get("run_id") or NONE_KEY
            result.by_agent[agent] = result.by_agent.get(agent, 0) + 1
            result.by_run[run] = result.by_run.get(run, 0) + 1
        return result

    def verify(self, scope: dict[str, Any], holds: Sequence[dict[str, Any]]) -> dict[str, int]:
        remaining = [m for m in self._list(scope) if not any(matches(m, h) for h in holds if h)]
        return {"memories": len(remaining)}

    # --- erase -----------------------------------------------------------------------------------------------

    def erase(self, scope: dict[str, Any], holds: Sequence[dict[str, Any]], progress: EraseProgress) -> bool:
        """Phases saved in progress.state: list → delete (async by entity, or batches) → check; a check that still
        finds unheld memories (written meanwhile) starts another pass, at most MAX_PASSES."""
        refuse_unsafe_scope(scope)
        while progress.time_left() > 0:
            state = dict(progress.state)
            phase = state.get("phase", "list")
            if phase == "list":
                self._phase_list(scope, holds, progress, state)
            elif phase == "async":
                if not self._phase_async(scope, progress, state):
                    return False
            elif phase == "batch":
                self._phase_batch(progress, state)
            elif phase == "check":
                remaining = self.verify(scope, holds)["memories"]
                passes = int(state.get("passes", 1))
                if remaining == 0:
                    progress.checkpoint(state={"phase": "done", "passes": passes})
                    return True
                if passes >= MAX_PASSES:
                    raise StoreError(f"{remaining} memories still match after {passes} passes")
                progress.checkpoint(state={"phase": "list", "passes": passes + 1})
            else:  # done
                return True
        return False

    def _phase_list(
        self,
        scope: dict[str, Any],
        holds: Sequence[dict[str, Any]],
        progress: EraseProgress,
        state: dict[str, Any],
    ) -> None:
        memories = self._list(scope)
        unheld = sorted(str(m["id"]) for m in memories if not any(matches(m, h) for h in holds if h))
        held = len(memories) - len(unheld)
        entity_only = not (set(scope) - set(ENTITY_KEYS))
        mode = "async" if entity_only and held == 0 and not state.get("batch_only") else "batch"
        if not unheld:
            mode = "check"
        progress.checkpoint(
            state={
                "phase": mode,
                "passes": int(state.get("passes", 1)),
                "ids": unheld,
                "held": held,
                "done": 0,
                "events": {},
                "batch_only": bool(state.get("batch_only")),
            }
        )

    def _phase_async(self, scope: dict[str, Any], progress: EraseProgress, state: dict[str, Any]) -> bool:
        """One DELETE /v1/memories/ per user id (with the scope's other entity ids), each polled to its end.
        Returns False when the time budget ran out while polling."""
        events: dict[str, str] = dict(state.get("events") or {})
        narrowing: dict[str, Any] = {k: scope[k] for k in ("agent_id", "app_id", "run_id") if k in scope}
        if any(isinstance(v, list) for v in narrowing.values()):  # the query takes one value per key
            progress.checkpoint(state={**state, "phase": "batch", "batch_only": True})
            return True
        for index, user_id in enumerate(_values(scope, "user_id")):
            key = str(index)
            if key not in events:
                data = self._json(
                    self._call("DELETE", "/v1/memories/", params={"user_id": user_id, **narrowing})
                )
                event_id = data.get("event_id") if isinstance(data, dict) else None
                if not event_id:  # a service that deletes synchronously: nothing to poll
                    event_id = ""
                events[key] = str(event_id)
                progress.checkpoint(state={**state, "events": events})
        for event_id in events.values():
            if not event_id:
                continue
            while True:
                response = self._call("GET", f"/v1/event/{event_id}/", allow=(404,))
                status = (
                    "SUCCEEDED" if response.status_code == 404 else str(self._json(response).get("status"))
                )
                if status == "SUCCEEDED":
                    break
                if status == "FAILED":  # fall back to deleting the listed ids in batches
                    progress.checkpoint(
                        state={**state, "events": events, "phase": "batch", "batch_only": True}
                    )
                    return True
                if progress.time_left() <= 0:
                    return False
                time.sleep(min(1.0, max(progress.time_left(), 0.05)))
        ids = list(state.get("ids") or [])
        progress.checkpoint(
            deleted_ids=ids, state={"phase": "check", "passes": state.get("passes", 1), "done": len(ids)}
        )
        return True

    def _phase_batch(self, progress: EraseProgress, state: dict[str, Any]) -> None:
        """DELETE /v1/batch/ of the listed unheld ids, 1,000 a call. An id the store no longer has was deleted
        (it was listed in the scope moments ago); a call repeated after a crash finds those not found."""
        ids = list(state.get("ids") or [])
        done = int(state.get("done", 0))
        while done < len(ids) and progress.time_left() > 0:
            chunk = ids[done : done + self.batch_size]
            data = self._json(
                self._call("DELETE", "/v1/batch/", body={"memories": [{"memory_id": i} for i in chunk]})
            )
            kept = {
                str(row.get("memory_id"))
                for row in (data.get("results") or [] if isinstance(data, dict) else [])
                if isinstance(row, dict) and row.get("status") == "held"
            }
            done += len(chunk)
            progress.checkpoint(
                deleted_ids=[i for i in chunk if i not in kept], state={**state, "done": done}
            )
            state = dict(progress.state)
        if done >= len(ids):
            progress.checkpoint(state={"phase": "check", "passes": state.get("passes", 1), "done": done})
