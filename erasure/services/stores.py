"""The erasure workflow across stores: every enabled store is counted at scoping, erased by its own job after
approval (the built-in store by the engine's DeletionJob, each connected store by a StoreJob, in parallel), and
verified. The request is `deleted` once every job has succeeded and `verified` once every store verifies; a store
whose job fails makes the request `failed`, naming the store, and `retry` resumes only the unfinished jobs.

The lifecycle services (requests.py, verification.py) call the functions here at a few marked places.
"""

import logging
from typing import Any

from django.db.models import Q

from memories.models import DeletionJob, Store, StoreJob
from memories.pseudonyms import pseudonym
from memories.stores.base import StoreError
from memories.stores.jobs import store_job_create, store_job_reopen, store_job_retry, store_job_verify
from memories.stores.mem0_platform import OUTSIDE_REACH as PLATFORM_OUTSIDE_REACH
from memories.stores.registry import connector_for

from ..models import ErasureRequest, State
from .common import NONE_KEY, engine_scope
from .errors import VerificationIncomplete

logger = logging.getLogger(__name__)

OUTSIDE_REACH: dict[str, str] = {
    Store.Kind.BUILTIN: "Backups and write-ahead logs of this service's database, within the residual windows below.",
    Store.Kind.MEM0_PLATFORM: PLATFORM_OUTSIDE_REACH,
    Store.Kind.MEM0_OSS: (
        "Backups or snapshots of the vector store and of Mem0's history database taken before the erasure, and "
        "copies the application keeps elsewhere (logs, caches, prompts sent to an LLM provider), are outside "
        "this service's reach; they expire under the deployment's own retention."
    ),
}


class StoreUnreachable(Exception):
    """A connected store could not be counted (down, refusing the key, misconfigured). Answers 503 naming the
    store; the message is a connector's staff message, never data."""

    def __init__(self, store: Store, detail: str):
        self.store_name = store.name
        self.message = f"store {store.name} could not be counted: {detail}"
        super().__init__(self.message)


def builtin_store() -> Store:
    """The built-in store's row (created by migration memories 0021; re-created if someone removed it)."""
    store = Store.objects.filter(kind=Store.Kind.BUILTIN).first()
    if store is None:
        store, _ = Store.objects.get_or_create(
            kind=Store.Kind.BUILTIN, defaults={"name": Store.BUILTIN_NAME, "enabled": True}
        )
    return store


def enabled_stores() -> list[Store]:
    """The built-in store first, then the enabled connected stores in the order they were added."""
    stores = list(
        Store.objects.filter(Q(enabled=True) | Q(kind=Store.Kind.BUILTIN)).order_by("created_at", "name")
    )
    builtin = [store for store in stores if store.kind == Store.Kind.BUILTIN]
    others = [store for store in stores if store.kind != Store.Kind.BUILTIN]
    return [builtin[0] if builtin else builtin_store(), *others]


def _holds() -> list[dict[str, Any]]:
    from memories.holds import active_hold_scopes

    return list(active_hold_scopes())


def _close(connector: Any) -> None:
    close = getattr(connector, "close", None)
    if close is not None:
        close()


def erasure_request_count_stores(*, request: ErasureRequest) -> dict[str, Any]:
    """Exact counts in every enabled store: {"total", "held", "by_agent", "by_run"} added up over the stores, and
    "stores": [{"store", "kind", "total", "by_agent", "by_run", "held"}]. Raises StoreUnreachable."""
    scope = engine_scope(request)
    holds = _holds()
    totals: dict[str, Any] = {
        "total": 0,
        "held": 0,
        "by_agent": {},
        "by_run": {},
        "by_user": {},
        "stores": [],
    }
    for store in enabled_stores():
        try:
            connector = connector_for(store)
            try:
                counts = connector.count(scope, holds)
            finally:
                _close(connector)
        except StoreError as exc:
            raise StoreUnreachable(store, str(exc)) from None
        totals["stores"].append(
            {
                "store": store.name,
                "kind": store.kind,
                "total": counts.total,
                "by_agent": counts.by_agent,
                "by_run": counts.by_run,
                "held": counts.held,
            }
        )
        totals["total"] += counts.total
        totals["held"] += counts.held
        for key in ("by_agent", "by_run", "by_user"):
            for name, n in getattr(counts, key).items():
                totals[key][name] = totals[key].get(name, 0) + n
    return totals


def erasure_request_stores_start(*, request: ErasureRequest) -> list[StoreJob]:
    """At approval (inside its transaction): one StoreJob per enabled connected store, sent on commit. The
    built-in store's job is the request's DeletionJob, created by the approval itself."""
    scoped = {entry.get("store"): entry for entry in (request.scoped_stores or [])}
    jobs = []
    for store in enabled_stores():
        if store.is_builtin:
            continue
        jobs.append(
            store_job_create(
                store=store,
                scope=engine_scope(request),
                requested_by=request.reference,
                scoped_total=int((scoped.get(store.name) or {}).get("total") or 0),
            )
        )
    return jobs


def store_jobs_of(request: ErasureRequest) -> list[StoreJob]:
    return list(StoreJob.objects.filter(requested_by=request.reference).select_related("store"))


def deletion_totals_when_ready(*, request: ErasureRequest, job: DeletionJob) -> dict[str, int] | None:
    """The request's counts when it becomes `deleted` — the built-in store's job plus every connected store's — or
    None while a connected store's job has not yet succeeded. Locks the request row first, so that two jobs
    finishing at once (the engine's and a store's, each in its own transaction) cannot both see the other
    unfinished: the second waits for the first to commit, then sees it."""
    ErasureRequest.objects.select_for_update().filter(id=request.id).first()
    totals = {
        "deleted": job.deleted_count,
        "held": job.held_count,
        "history_purged": job.history_purged_count,
    }
    for status, deleted, held, purged in StoreJob.objects.filter(requested_by=request.reference).values_list(
        "status", "deleted_count", "held_count", "history_rows_purged"
    ):
        if status != StoreJob.Status.SUCCEEDED:
            return None
        totals["deleted"] += deleted
        totals["held"] += held
        totals["history_purged"] += purged
    return totals


def erasure_request_store_job_finished(*, job: StoreJob) -> ErasureRequest | None:
    """Called inside a StoreJob's final transaction. FAILED → the request `failed` naming the store; SUCCEEDED
    and the last of the request's jobs → the request moves on as when its engine job finishes."""
    from .verification import erasure_request_fail, erasure_request_job_finished

    request = ErasureRequest.objects.select_for_update().filter(reference=job.requested_by).first()
    if request is None:
        return None
    if job.status == StoreJob.Status.FAILED:
        if request.state in (State.SCOPED, State.DELETED):
            return erasure_request_fail(request=request, reason=f"store {job.store.name}: {job.error}"[:200])
        return request
    builtin = (
        DeletionJob.objects.filter(id=request.deletion_job_id).first() if request.deletion_job_id else None
    )
    if builtin is not None and builtin.status == DeletionJob.Status.SUCCEEDED:
        return erasure_request_job_finished(job=builtin)  # checks that every store's job has succeeded
    return request


def erasure_request_stores_retry(*, request: ErasureRequest) -> int:
    """At `retry`: sends again every failed store job of the request (each resumes from its saved state); the
    succeeded ones are left alone, unless the request failed at verification (it had reached `deleted`): then
    they make another pass too, so that what the verification found in a store is erased. Returns how many."""
    reopened = 0
    for job in StoreJob.objects.filter(requested_by=request.reference):
        if job.status == StoreJob.Status.FAILED:
            reopened += int(store_job_retry(job_id=job.id))
        elif job.status == StoreJob.Status.SUCCEEDED and request.deleted_at is not None:
            reopened += int(store_job_reopen(job_id=job.id, scope=engine_scope(request)))
    return reopened


def _verification_key(location: str) -> str:
    # "messages" and the like are refused as audit keys (personal-data names): counts get a neutral prefix.
    return f"remaining_{location}"


def erasure_request_stores_verify(
    *, request: ErasureRequest, holds: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Verifies every connected store the request erased (what still matches its scope, per location, held
    memories aside). Raises VerificationIncomplete naming the store when anything remains or a store cannot be
    reached (the verify task retries). Returns the per-store results for the request's `verification`.
    `holds`: the active holds' scopes, when the caller has read them."""
    jobs = store_jobs_of(request)
    if not jobs:
        return []
    scope = engine_scope(request)
    holds = _holds() if holds is None else holds
    results = []
    for job in jobs:
        try:
            connector = connector_for(job.store)
            try:
                remaining = store_job_verify(job_id=job.id, connector=connector, scope=scope, holds=holds)
            finally:
                _close(connector)
        except StoreError as exc:
            raise VerificationIncomplete(f"store {job.store.name} could not be verified: {exc}") from None
        if any(remaining.values()):
            where = ", ".join(f"{k} {v}" for k, v in sorted(remaining.items()) if v)
            raise VerificationIncomplete(f"store {job.store.name} still holds data of the subject ({where})")
        results.append(
            {
                "store": job.store.name,
                "kind": job.store.kind,
                **{_verification_key(k): int(v) for k, v in sorted(remaining.items())},
            }
        )
    return results


def pseudonymised_store_counts(stores: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """scoped_stores with the agent and run ids hashed (as the request's own counts are at pseudonymisation)."""

    def hashed(counts: dict[str, int]) -> dict[str, int]:
        return {(pseudonym(k) if k != NONE_KEY else NONE_KEY): v for k, v in (counts or {}).items()}

    return [
        {
            **entry,
            "by_agent": hashed(entry.get("by_agent") or {}),
            "by_run": hashed(entry.get("by_run") or {}),
        }
        for entry in (stores or [])
    ]


def _percent(done: int, total: int | None) -> int | None:
    if not total:
        return None
    return max(0, min(100, round(100 * done / total)))


def stores_progress(*, request: ErasureRequest, builtin: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per store the request reaches: {"store", "kind", "status", "deleted", "total", "held",
    "percent", "error"}. `builtin` is the engine job's progress (erasure.selectors.progress)."""
    scoped = {entry.get("store"): entry for entry in (request.scoped_stores or [])}
    builtin_name = builtin_store().name
    builtin_scoped = scoped.get(builtin_name) or {}
    builtin_total = builtin_scoped.get("total", request.scoped_total if not scoped else None)
    jobs = store_jobs_of(request)
    builtin_deleted = builtin.get("deleted") or 0
    if request.deleted_count is not None and jobs:  # the request's count is the sum over the stores
        builtin_deleted = request.deleted_count - sum(j.deleted_count for j in jobs)
    entries = [
        {
            "store": builtin_name,
            "kind": Store.Kind.BUILTIN,
            "status": builtin.get("job_status"),
            "deleted": builtin_deleted,
            "total": builtin_total,
            "held": builtin_scoped.get("held", request.scoped_held if not scoped else None),
            "percent": _percent(builtin_deleted, (builtin_total or 0) - (builtin_scoped.get("held") or 0)),
            "error": "",
        }
    ]
    seen = {builtin_name}
    for job in jobs:
        seen.add(job.store.name)
        held = (scoped.get(job.store.name) or {}).get("held") or 0
        total = job.scoped_total or (scoped.get(job.store.name) or {}).get("total")
        done = job.deleted_count
        entries.append(
            {
                "store": job.store.name,
                "kind": job.store.kind,
                "status": job.status,
                "deleted": done,
                "total": total,
                "held": held,
                "percent": 100
                if job.status == StoreJob.Status.SUCCEEDED
                else _percent(done, (total or 0) - held),
                "error": job.error,
            }
        )
    for name, entry in scoped.items():  # scoped but not (yet) approved
        if name not in seen:
            entries.append(
                {
                    "store": name,
                    "kind": entry.get("kind"),
                    "status": None,
                    "deleted": 0,
                    "total": entry.get("total"),
                    "held": entry.get("held"),
                    "percent": None,
                    "error": "",
                }
            )
    return entries


def certificate_stores(*, request: ErasureRequest) -> list[dict[str, Any]]:
    """The certificate's per-store section: counts, deleted-ids digest, residue purged, what stays out of reach.
    Built from what survives pseudonymisation (store jobs keep no clear scope once finished)."""
    scoped = {entry.get("store"): entry for entry in (request.scoped_stores or [])}
    jobs = store_jobs_of(request)
    entries = [
        {
            "store": Store.BUILTIN_NAME,  # the built-in store cannot be renamed (api/stores.py)
            "kind": Store.Kind.BUILTIN,
            "scoped": (scoped.get(Store.BUILTIN_NAME) or {}).get(
                "total", request.scoped_total if not scoped else None
            ),
            "deleted": (request.deleted_count or 0) - sum(j.deleted_count for j in jobs),
            "held": (request.held_count or 0) - sum(j.held_count for j in jobs),
            "deleted_ids_digest": request.deleted_ids_digest,
            "residue_purged": {
                "history_rows": (request.history_purged_count or 0)
                - sum(j.history_rows_purged for j in jobs),
                "entity_rows": 0,
                "chat_messages": 0,
            },
            "outside_reach": OUTSIDE_REACH[Store.Kind.BUILTIN],
        }
    ]
    for job in jobs:
        entries.append(
            {
                "store": job.store.name,
                "kind": job.store.kind,
                "scoped": (scoped.get(job.store.name) or {}).get("total", job.scoped_total),
                "deleted": job.deleted_count,
                "held": job.held_count,
                "deleted_ids_digest": job.digest,
                "residue_purged": {
                    "history_rows": job.history_rows_purged,
                    "entity_rows": job.entity_rows_purged,
                    "chat_messages": job.messages_purged,
                },
                "finished_at": job.finished_at.isoformat() if job.finished_at else None,
                "outside_reach": OUTSIDE_REACH.get(job.store.kind, ""),
            }
        )
    return entries
