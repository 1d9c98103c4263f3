"""The request's moves made by the workers: the deletion job's outcome, the verification with its final sweep,
the pseudonymisation of the subject's identifiers, and the sweeper of verifications whose message was lost."""

import logging
from datetime import timedelta
from functools import partial
from typing import Any

from celery import current_task
from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from memories import engine
from memories.holds import active_hold_scopes, held_q, hold_scopes_for
from memories.models import DeletionJob, WriteBlock
from memories.pseudonyms import pseudonym
from memories.scope import scope_queryset
from memories.services import write_block_lift, write_block_place

from .. import notices
from ..attribution import erasure_attribution
from ..audit import audit_append
from ..models import Action, ErasureRequest, State
from ..privacy import erasure_request_verified_compliance
from . import stores as connected_stores
from .common import NONE_KEY, compare_and_set, engine_scope
from .errors import IllegalTransition, VerificationIncomplete

logger = logging.getLogger(__name__)


def erasure_request_job_finished(*, job: DeletionJob) -> ErasureRequest | None:
    """Step 2 of the path from a job's end to `verified` (erasure/receivers.py). Called inside the deletion job's
    final transaction: SUCCEEDED → `deleted` with the job's counts, and the verification started on commit (here,
    when this runs in the worker task that ran the job); FAILED → `failed`. Jobs that belong to no request are
    ignored. Side effects: the row, one audit entry."""
    request = ErasureRequest.objects.filter(deletion_job_id=job.id).first()
    if request is None:
        return None
    try:
        if job.status == DeletionJob.Status.SUCCEEDED:
            # every store's counts added up, or None while a connected store's job is unfinished
            totals = connected_stores.deletion_totals_when_ready(request=request, job=job)
            if totals is None:
                return request  # the last connected store's job to finish moves the request on
            request = compare_and_set(
                request,
                Action.COMPLETE_DELETION,
                deleted_at=timezone.now(),
                deleted_count=totals["deleted"],
                held_count=totals["held"],
                history_purged_count=totals["history_purged"],
                deleted_ids_digest=job.digest,
                failure_reason="",
            )
            audit_append(
                actor="worker",
                action="request.deleted",
                request=request,
                data={
                    "state": request.state,
                    "deletion_job": str(job.id),
                    "deleted": job.deleted_count,
                    "held": job.held_count,
                    "history_purged": job.history_purged_count,
                    "deleted_ids_digest": job.digest,
                },
            )
            verification_start(str(request.id), here=_in_worker_task())
        elif job.status == DeletionJob.Status.FAILED:
            request = erasure_request_fail(request=request, reason=job.error or "deletion job failed")
    except IllegalTransition:
        logger.warning("job finished for a request in another state", extra={"request": str(request.id)})
    return request


def _in_worker_task() -> bool:
    # current_task is a proxy: outside a Celery task it stands for None (falsy)
    return bool(current_task)


def verification_start(request_id: str, *, here: bool = False) -> None:
    """Step 3 of the path (erasure/receivers.py): once the current transaction commits, the request is verified.
    With `here` (the worker task whose deletion job just finished; ERASURE_VERIFY_INLINE on) at once in this
    process, one task and one broker round trip less; otherwise, and whenever that cannot finish (residue to wait
    for, an error), by erasure.tasks.erasure_request_verify_task with its retries and back-off. A worker killed in
    between leaves the request in `deleted`, where the beat sweeper (erasure_requests_resume_stale) finds it."""
    transaction.on_commit(
        partial(_verify_here_or_enqueue, request_id, here=here and settings.ERASURE_VERIFY_INLINE)
    )


def _verify_here_or_enqueue(request_id: str, *, here: bool) -> None:
    if here:
        try:
            erasure_request_verify(request_id=request_id)
            return
        except IllegalTransition:
            return  # verified (or moved on) by someone else
        except Exception as exc:  # noqa: BLE001 - the task below retries; class name only, never data
            logger.warning("inline verification deferred to the task", extra={"error": type(exc).__name__})
    from ..tasks import erasure_request_verify_task  # the tasks module imports the services

    erasure_request_verify_task.delay(request_id)


@transaction.atomic
def erasure_request_fail(*, request: ErasureRequest, reason: str) -> ErasureRequest:
    """→ `failed` (retries exhausted). `reason` is a class name or a fixed phrase, never data. The erasure
    WriteBlock stays: the subject remains frozen until a retry finishes the work."""
    request = compare_and_set(request, Action.FAIL, failed_at=timezone.now(), failure_reason=reason[:200])
    audit_append(
        actor="worker",
        action="request.failed",
        request=request,
        data={"state": request.state, "reason": reason},
    )
    notices.request_event(request=request, event="failed")
    logger.warning("erasure request failed", extra={"request": str(request.id)})
    return request


def _erasure_job_ids(request: ErasureRequest) -> list[Any]:
    """The request's deletion job and any final-sweep jobs (all requested under its reference)."""
    return list(
        DeletionJob.objects.filter(kind=DeletionJob.Kind.ERASURE, requested_by=request.reference).values_list(
            "id", flat=True
        )
    )


def _residue(request: ErasureRequest, user_ids: list[str], holds: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts of what of the subject remains, table by table; every query index-backed (memories by user_id,
    history by memory_id over the ids in the tombstones of the request's jobs, write blocks by user_id_hmac).
    `holds`: the active holds' scopes (memories.holds.active_hold_scopes)."""
    scope = engine_scope(request)
    memories = scope_queryset(scope)
    job_scope = Q()
    for user_id in user_ids:
        job_scope |= Q(scope__user_id=user_id) | Q(scope__user_id__contains=[user_id])
    held = held_q(hold_scopes=hold_scopes_for(scope, active=holds))  # holds are rules (memories.holds)
    counts = memories.aggregate(
        remaining=Count("id", filter=~held),
        held=Count("id", filter=held),
    )
    return {
        "memories_remaining": counts["remaining"],
        "memories_held": counts["held"],
        "history_text_remaining": engine.deletion_jobs_history_text_remaining(
            job_ids=_erasure_job_ids(request)
        ),
        # Open or failed jobs keep their clear scope; finished ones have NULL (the filter skips them first).
        "deletion_jobs_with_clear_scope": DeletionJob.objects.filter(scope__isnull=False)
        .filter(job_scope)
        .count(),
        "write_blocks_in_clear": WriteBlock.objects.filter(user_id_hmac__in=user_ids).count(),
    }


CHECKED_TABLES = [
    "memories_memory",
    "memories_history",
    "memories_tombstone",
    "memories_deletionjob",
    "memories_writeblock",
]


def erasure_request_verify(*, request_id: Any) -> ErasureRequest:
    """Confirms that nothing of the subject remains, then → `verified`. A straggler (a row written despite the
    write block) gets a final sweep through the engine first. Raises VerificationIncomplete when residue stays.

    Side effects, in one transaction: possibly a sweep job; `verified` with `verification`, the suppression
    block placed (if asked) and the erasure block lifted, the completion mail (if an e-mail), the request
    pseudonymised, audit entries. VerificationIncomplete rolls all of it back (a later attempt sweeps again).

    Two deliveries of the verification (a retry and a sweeper re-enqueue) may run at once: the request row is
    locked for the whole verification, so the counters are never updated from a stale read and only one of them
    verifies; the other gets IllegalTransition."""
    with transaction.atomic():
        request = ErasureRequest.objects.select_for_update().get(id=request_id)
        if request.state != State.DELETED:
            raise IllegalTransition(request, Action.VERIFY)
        user_ids = list(request.subject_user_ids)
        holds = active_hold_scopes()  # read once: the residue counts and the connected stores' checks
        swept = 0
        with engine.index_scans_only():
            residue = _residue(request, user_ids, holds)
        if residue[
            "memories_remaining"
        ]:  # stragglers: swept through the engine, then everything checked again
            result = engine.memories_delete_now(
                kind=DeletionJob.Kind.ERASURE, scope=engine_scope(request), requested_by=request.reference
            )
            swept = result.job.deleted_count
            ErasureRequest.objects.filter(id=request.id).update(
                deleted_count=(request.deleted_count or 0) + swept,
                history_purged_count=(request.history_purged_count or 0) + result.job.history_purged_count,
                # over everything the request's jobs deleted, the sweep included
                deleted_ids_digest=engine.jobs_ids_digest(job_ids=_erasure_job_ids(request)),
            )
            logger.warning(
                "final sweep removed stragglers", extra={"request": str(request.id), "count": swept}
            )
            request.refresh_from_db()
            with engine.index_scans_only():
                residue = _residue(request, user_ids, holds)
        if residue["memories_remaining"] or residue["history_text_remaining"]:
            raise VerificationIncomplete("residue after the final sweep")
        if residue["deletion_jobs_with_clear_scope"] or residue["write_blocks_in_clear"]:
            raise VerificationIncomplete("other jobs still hold the subject's identifiers")
        # raises on residue
        stores_verified = connected_stores.erasure_request_stores_verify(request=request, holds=holds)
        verification = {
            "memories_remaining": 0,
            "history_text_remaining": 0,
            "deletion_jobs_with_clear_scope": 0,
            "write_blocks_in_clear": 0,
            "memories_held": residue["memories_held"],
            "final_sweep_deleted": swept,
            "checked_tables": CHECKED_TABLES,
            "checked_at": timezone.now().isoformat(),
        }
        if stores_verified:
            verification["stores"] = stores_verified
        # Scoped memories that other jobs deleted under this request's feet (erasure/attribution.py).
        attribution = erasure_attribution(request=request, user_ids=user_ids)
        if attribution:
            verification["erased_elsewhere"] = attribution
        request = compare_and_set(
            request, Action.VERIFY, verified_at=timezone.now(), verification=verification
        )
        if request.suppress:
            write_block_place(
                user_ids=user_ids,
                kind=WriteBlock.Kind.SUPPRESSION,
                reference=request.reference,
                scope=request.scope,
            )
        write_block_lift(reference=request.reference, kind=WriteBlock.Kind.ERASURE)
        audit_append(
            actor="worker",
            action="request.verified",
            request=request,
            data={"state": request.state, "verification": verification, "suppressed": request.suppress},
        )
        notices.request_event(request=request, event="verified")  # before the e-mail is pseudonymised
        request = erasure_request_pseudonymise(request=request, actor="worker")
        # the certificate issued and stored, the subject's other closed requests pseudonymised
        erasure_request_verified_compliance(request=request)
    logger.info("erasure request verified", extra={"request": str(request.id)})
    return request


def erasure_requests_resume_stale(*, stale_seconds: float | None = None) -> int:
    """Re-enqueues the verification of requests left in `deleted` for longer than stale_seconds: their verify
    message was lost (Redis restarted empty, or the broker was down when the deletion job finished and tried to
    enqueue it). A duplicate is harmless (erasure_request_verify locks the row). Side effects: updated_at touched
    (so a request is re-sent at most once per period), verify tasks enqueued on commit. Returns how many."""
    stale = settings.DELETION_STALE_SECONDS if stale_seconds is None else stale_seconds
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            ErasureRequest.objects.select_for_update(skip_locked=True)
            .filter(state=State.DELETED, updated_at__lt=now - timedelta(seconds=stale))
            .values_list("id", flat=True)
        )
        ErasureRequest.objects.filter(id__in=ids).update(updated_at=now)
        for request_id in ids:
            verification_start(str(request_id))
    if ids:
        logger.warning("re-enqueued stale verifications", extra={"count": len(ids)})
    return len(ids)


@transaction.atomic
def erasure_request_pseudonymise(*, request: ErasureRequest, actor: str) -> ErasureRequest:
    """Replaces the subject's identifiers on the request by keyed hashes: user_ids and e-mail emptied, the clear
    scope dropped (scope_pseudonymised kept), agent/run keys of the counts hashed. Side effects: the row, one
    audit entry."""

    def hashed(counts: dict[str, int]) -> dict[str, int]:
        return {(pseudonym(k) if k != NONE_KEY else NONE_KEY): v for k, v in (counts or {}).items()}

    request.subject_user_ids = []
    request.subject_email = ""
    request.scope = {}
    # free text kept only as long as the identifiers (it may name the subject)
    request.identity_note = request.rejection_note = request.extension_reason = ""
    request.scoped_by_agent = hashed(request.scoped_by_agent)
    request.scoped_by_run = hashed(request.scoped_by_run)
    request.scoped_stores = connected_stores.pseudonymised_store_counts(request.scoped_stores)
    request.scoped_by_user = hashed(request.scoped_by_user)
    request.pseudonymised_at = timezone.now()
    request.save(
        update_fields=[
            "subject_user_ids",
            "subject_email",
            "scope",
            "scoped_by_agent",
            "scoped_by_run",
            "scoped_stores",
            "identity_note",
            "rejection_note",
            "extension_reason",
            "scoped_by_user",
            "pseudonymised_at",
            "updated_at",
        ]
    )
    audit_append(actor=actor, action="request.pseudonymised", request=request, data={"state": request.state})
    return request
