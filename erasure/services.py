"""Writes of the erasure workflow: one service per move of the lifecycle (erasure/models.py TRANSITIONS).

Every move is a compare-and-set in SQL (`UPDATE … WHERE id = … AND state = <expected>`): when no row matches,
someone else moved the request first and the caller gets IllegalTransition with the state as it is now. Every
service writes one audit entry holding ids, states, counts and pseudonyms only.
"""

import logging
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from memories import engine
from memories.models import DeletionJob, LegalHold, Memory, MemoryHistory, WriteBlock
from memories.pseudonyms import pseudonym, pseudonymise_scope
from memories.scope import ScopeError, scope_queryset, validate_scope
from memories.services import legal_hold_lift, legal_hold_place, write_block_lift, write_block_place

from .audit import audit_append
from .deadlines import acknowledge_due_date, due_date, extended_due_date
from .models import (
    TRANSITIONS,
    Action,
    Channel,
    ErasureRequest,
    IdentityStatus,
    Regulation,
    RejectionReason,
    State,
)
from .selectors import action_allowed, allowed_actions, status_token_hash

logger = logging.getLogger(__name__)

NARROWING_KEYS = ("agent_id", "app_id", "run_id", "metadata")
MAX_USER_IDS = 100
NONE_KEY = ""  # the key under which memories without an agent_id / run_id are counted


class IllegalTransition(Exception):
    """A move the request's current state does not allow (HTTP 409). Carries the state as it is now."""

    def __init__(self, request: ErasureRequest, action: str, message: str = ""):
        request.refresh_from_db()
        self.request = request
        self.action = str(action)
        self.state = str(request.state)
        self.allowed_actions = allowed_actions(request)
        self.message = message or f"'{self.action}' is not allowed while the request is {self.state}"
        super().__init__(self.message)


class IdentityNotVerified(IllegalTransition):
    """Scoping before the subject's identity was verified."""


class ErasureInputError(ValueError):
    """Bad input for a service (HTTP 400), naming the field."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class VerificationIncomplete(Exception):
    """Data of the subject still found after the final sweep; the verify task retries later."""


def engine_scope(request: ErasureRequest) -> dict[str, Any]:
    """The engine's scope for this request: all its user_ids, narrowed by the optional scope keys."""
    return {"user_id": sorted(request.subject_user_ids), **(request.scope or {})}


def _cas(request: ErasureRequest, action: str, *, guard: Q | None = None, **updates: Any) -> ErasureRequest:
    """Compare-and-set: moves the row only if it is still in the state this caller saw (and passes `guard`)."""
    from_states, target = TRANSITIONS[action]
    if request.state not in from_states:
        raise IllegalTransition(request, action)
    if target is not None:
        updates["state"] = target
    updates["updated_at"] = timezone.now()
    qs = ErasureRequest.objects.filter(id=request.id, state=request.state)
    if guard is not None:
        qs = qs.filter(guard)
    if qs.update(**updates) != 1:
        raise IllegalTransition(request, action)
    request.refresh_from_db()
    return request


def _mail(*, subject: str, body: str, to: str) -> bool:
    """Plain-text mail to the subject. A failure is logged (without the address) and reported as False."""
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [to], fail_silently=False)
    except Exception as exc:  # noqa: BLE001 - any transport error; the request itself must not fail
        logger.warning("subject mail failed", extra={"error": type(exc).__name__})
        return False
    return True


def status_link(request: ErasureRequest, raw_token: str) -> str:
    return f"{settings.SITE_URL}/privacy/status/{request.reference}/?token={raw_token}"


def _next_reference(year: int) -> str:
    with connection.cursor() as cur:
        cur.execute("SELECT nextval('erasure_reference_seq')")
        (number,) = cur.fetchone()
    return f"ER-{year}-{number:06d}"


def _clean_subject(user_ids: Any, email: str) -> tuple[list[str], str]:
    if not isinstance(user_ids, list | tuple) or not user_ids:
        raise ErasureInputError("user_ids", "give at least one user_id")
    if len(user_ids) > MAX_USER_IDS:
        raise ErasureInputError("user_ids", f"at most {MAX_USER_IDS} user_ids per request")
    if not all(isinstance(u, str) and u.strip() for u in user_ids):
        raise ErasureInputError("user_ids", "each user_id must be a non-empty string")
    _refuse_nul("user_ids", list(user_ids))
    _refuse_nul("email", email or "")
    clean = sorted({u.strip() for u in user_ids})
    if any(len(u) > 255 for u in clean):
        raise ErasureInputError("user_ids", "a user_id is at most 255 characters")
    email = (email or "").strip()
    if email and ("@" not in email or len(email) > 254):
        raise ErasureInputError("email", "not a valid e-mail address")
    return clean, email


def _refuse_nul(field: str, value: Any) -> None:
    """PostgreSQL cannot store NUL in text or jsonb: such input would fail in the database as a 500."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ErasureInputError(field, "must not contain NUL characters (\\u0000)")
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_nul(field, key)
            _refuse_nul(field, item)
    elif isinstance(value, list | tuple):
        for item in value:
            _refuse_nul(field, item)


def _clean_scope(scope: Any) -> dict[str, Any]:
    if not scope:
        return {}
    if not isinstance(scope, dict):
        raise ErasureInputError("scope", "must be an object")
    _refuse_nul("scope", scope)
    unknown = sorted(set(scope) - set(NARROWING_KEYS))
    if unknown:
        raise ErasureInputError("scope", f"unknown key {unknown[0]}; allowed: {', '.join(NARROWING_KEYS)}")
    try:
        return validate_scope(scope)
    except ScopeError as exc:
        raise ErasureInputError("scope", str(exc)) from None


@transaction.atomic
def erasure_request_create(
    *,
    regulation: str,
    user_ids: list[str],
    email: str = "",
    scope: dict[str, Any] | None = None,
    suppress: bool = False,
    channel: str,
    actor: str,
) -> tuple[ErasureRequest, str]:
    """Registers a request in state `received` and returns it with the raw status token (shown once).

    Side effects: one ErasureRequest row (reference from erasure_reference_seq; only the token's sha256 kept),
    one audit entry; with an e-mail, the receipt mail with the secret status link (acknowledged_at set)."""
    if regulation not in Regulation.values:
        raise ErasureInputError("regulation", f"must be one of {', '.join(Regulation.values)}")
    if channel not in Channel.values:
        raise ErasureInputError("channel", f"must be one of {', '.join(Channel.values)}")
    clean_ids, email = _clean_subject(user_ids, email)
    narrowing = _clean_scope(scope)
    now = timezone.now()
    received = timezone.localdate(now)
    raw_token = secrets.token_urlsafe(32)
    request = ErasureRequest.objects.create(
        reference=_next_reference(received.year),
        regulation=regulation,
        channel=channel,
        created_by=actor[:150],
        subject_user_ids=clean_ids,
        subject_email=email,
        subject_pseudonyms={
            "user_ids": sorted(pseudonym(u) for u in clean_ids),
            "email": pseudonym(email.lower()) if email else None,
        },
        scope=narrowing,
        scope_pseudonymised=pseudonymise_scope(narrowing),
        suppress=bool(suppress),
        received_at=now,
        due_at=due_date(regulation, received),
        acknowledge_due_at=acknowledge_due_date(received) if regulation == Regulation.CCPA else None,
        status_token_hash=status_token_hash(raw_token),
    )
    audit_append(
        actor=actor,
        action="request.created",
        request=request,
        data={
            "state": request.state,
            "regulation": regulation,
            "channel": channel,
            "subject": request.subject_pseudonyms,
            "scope": request.scope_pseudonymised,
            "suppress": request.suppress,
            "due_at": request.due_at.isoformat(),
        },
    )
    if email:
        sent = _mail(
            subject=f"We received your erasure request {request.reference}",
            body=(
                f"We received your request to erase your personal data (reference {request.reference}).\n"
                f"We will answer by {request.due_at.isoformat()} at the latest.\n\n"
                f"Follow its progress here (keep this link private):\n{status_link(request, raw_token)}\n"
            ),
            to=email,
        )
        if sent:
            request.acknowledged_at = timezone.now()
            request.save(update_fields=["acknowledged_at", "updated_at"])
    logger.info("erasure request created", extra={"request": str(request.id), "reference": request.reference})
    return request, raw_token


@transaction.atomic
def erasure_request_verify_identity(*, request: ErasureRequest, actor: str, note: str = "") -> ErasureRequest:
    """Records that staff verified the subject's identity (state stays `received`). Side effects: the row's
    identity fields, one audit entry."""
    now = timezone.now()
    request = _cas(
        request,
        Action.VERIFY_IDENTITY,
        guard=Q(identity_status=IdentityStatus.PENDING),
        identity_status=IdentityStatus.VERIFIED,
        identity_verified_at=now,
        identity_verified_by=actor[:150],
        identity_note=note,
    )
    audit_append(
        actor=actor, action="request.identity_verified", request=request, data={"state": request.state}
    )
    return request


def erasure_request_count(*, request: ErasureRequest) -> dict[str, Any]:
    """Exact counts of what the erasure would remove now: total, held, per agent_id, per run_id (three
    aggregate queries over the engine's own filter)."""
    qs = scope_queryset(engine_scope(request))
    totals = qs.aggregate(total=Count("id"), held=Count("id", filter=Q(legal_hold__isnull=False)))
    by_agent = {
        (row["agent_id"] if row["agent_id"] is not None else NONE_KEY): row["n"]
        for row in qs.order_by().values("agent_id").annotate(n=Count("id"))
    }
    by_run = {
        (row["run_id"] if row["run_id"] is not None else NONE_KEY): row["n"]
        for row in qs.order_by().values("run_id").annotate(n=Count("id"))
    }
    return {"total": totals["total"], "held": totals["held"], "by_agent": by_agent, "by_run": by_run}


@transaction.atomic
def erasure_request_scope(*, request: ErasureRequest, actor: str) -> ErasureRequest:
    """Computes exact counts and moves the request to `scoped` (again, if already scoped and not approved).
    Raises IdentityNotVerified before identity verification. Side effects: counts on the row, one audit entry."""
    if request.state in TRANSITIONS[Action.SCOPE][0] and request.identity_status != IdentityStatus.VERIFIED:
        request.refresh_from_db()
        if request.identity_status != IdentityStatus.VERIFIED:
            raise IdentityNotVerified(request, Action.SCOPE, "the subject's identity must be verified first")
    counts = erasure_request_count(request=request)
    request = _cas(
        request,
        Action.SCOPE,
        guard=Q(identity_status=IdentityStatus.VERIFIED, approved_at__isnull=True),
        scoped_at=timezone.now(),
        scoped_total=counts["total"],
        scoped_held=counts["held"],
        scoped_by_agent=counts["by_agent"],
        scoped_by_run=counts["by_run"],
    )
    audit_append(
        actor=actor,
        action="request.scoped",
        request=request,
        data={
            "state": request.state,
            "total": counts["total"],
            "held": counts["held"],
            "agents": len(counts["by_agent"]),
            "runs": len(counts["by_run"]),
        },
    )
    return request


@transaction.atomic
def erasure_request_approve(*, request: ErasureRequest, actor: str) -> ErasureRequest:
    """Starts the erasure (state stays `scoped`; the workers move it on). Side effects, in one transaction:
    approved_at/approved_by; an erasure WriteBlock per user_id (keyed hashes) so no new memory of the subject
    is accepted; one DeletionJob (kind=erasure) enqueued on commit; one audit entry."""
    request = _cas(
        request,
        Action.APPROVE,
        guard=Q(approved_at__isnull=True),
        approved_at=timezone.now(),
        approved_by=actor[:150],
    )
    write_block_place(
        user_ids=list(request.subject_user_ids), kind=WriteBlock.Kind.ERASURE, reference=request.reference
    )
    job = engine.deletion_job_create(
        kind=DeletionJob.Kind.ERASURE, scope=engine_scope(request), requested_by=request.reference
    )
    ErasureRequest.objects.filter(id=request.id).update(deletion_job=job)
    request.deletion_job = job
    audit_append(
        actor=actor,
        action="request.approved",
        request=request,
        data={"state": request.state, "deletion_job": str(job.id), "scoped_total": request.scoped_total},
    )
    return request


@transaction.atomic
def erasure_request_reject(
    *, request: ErasureRequest, actor: str, reason: str, note: str = ""
) -> ErasureRequest:
    """→ `rejected` with one of DRP's reason codes. Side effects: the row, one audit entry."""
    if reason not in RejectionReason.values:
        raise ErasureInputError("reason", f"must be one of {', '.join(RejectionReason.values)}")
    request = _cas(
        request,
        Action.REJECT,
        guard=Q(approved_at__isnull=True),
        rejected_at=timezone.now(),
        rejection_reason=reason,
        rejection_note=note,
    )
    audit_append(
        actor=actor,
        action="request.rejected",
        request=request,
        data={"state": request.state, "reason": reason},
    )
    return request


@transaction.atomic
def erasure_request_cancel(*, request: ErasureRequest, actor: str, note: str = "") -> ErasureRequest:
    """→ `cancelled`, only before the deletion started (approved_at empty). Side effects: the row, one audit
    entry."""
    request = _cas(request, Action.CANCEL, guard=Q(approved_at__isnull=True), cancelled_at=timezone.now())
    audit_append(
        actor=actor,
        action="request.cancelled",
        request=request,
        data={"state": request.state, "note_given": bool(note)},
    )
    return request


@transaction.atomic
def erasure_request_extend(*, request: ErasureRequest, actor: str, reason: str) -> ErasureRequest:
    """Extends the due date once by the regulation's allowance. Raises ErasureInputError (field `reason`) when
    no reason is given or the request was already extended. Side effects: due_at/extended_at, one audit entry."""
    reason = (reason or "").strip()
    if not reason:
        raise ErasureInputError("reason", "an extension needs a reason")
    if request.extended_at is not None:
        raise ErasureInputError("reason", "the deadline was already extended once")
    old_due = request.due_at
    new_due = extended_due_date(request.regulation, old_due)
    try:
        request = _cas(
            request,
            Action.EXTEND,
            guard=Q(extended_at__isnull=True, due_at=old_due),
            extended_at=timezone.now(),
            extension_reason=reason,
            due_at=new_due,
        )
    except IllegalTransition as exc:
        if exc.request.extended_at is not None:
            raise ErasureInputError("reason", "the deadline was already extended once") from None
        raise
    audit_append(
        actor=actor,
        action="request.extended",
        request=request,
        data={"state": request.state, "due_before": old_due.isoformat(), "due_at": new_due.isoformat()},
    )
    return request


@transaction.atomic
def erasure_request_retry(*, request: ErasureRequest, actor: str) -> ErasureRequest:
    """From `failed`: when the deletion job failed, back to `scoped` (approved_at kept) and the job resumes from
    its saved cursor; when the job had finished and verification failed, back to `deleted` and verification is
    enqueued again. Side effects: the row, the job re-enqueued or the verify task, one audit entry."""
    if request.state != State.FAILED:
        raise IllegalTransition(request, Action.RETRY)
    job = DeletionJob.objects.filter(id=request.deletion_job_id).first() if request.deletion_job_id else None
    if job is not None and job.status == DeletionJob.Status.SUCCEEDED:
        request = _cas(request, Action.COMPLETE_DELETION, failure_reason="")
        _enqueue_verify(request)
        resumed = "verification"
    else:
        qs = ErasureRequest.objects.filter(id=request.id, state=State.FAILED)
        if qs.update(state=State.SCOPED, failure_reason="", updated_at=timezone.now()) != 1:
            raise IllegalTransition(request, Action.RETRY)
        request.refresh_from_db()
        if job is not None:
            engine.deletion_job_retry(job_id=job.id)
        resumed = "deletion"
    audit_append(
        actor=actor,
        action="request.retried",
        request=request,
        data={"state": request.state, "resumes": resumed, "deletion_job": str(job.id) if job else None},
    )
    return request


def _enqueue_verify(request: ErasureRequest) -> None:
    _enqueue_verify_id(str(request.id))


def _enqueue_verify_id(request_id: str) -> None:
    from .tasks import erasure_request_verify_task

    transaction.on_commit(lambda: erasure_request_verify_task.delay(request_id))


# --- Moves made by the workers -------------------------------------------------------------------------------


def erasure_request_job_finished(*, job: DeletionJob) -> ErasureRequest | None:
    """Called inside the deletion job's final transaction. SUCCEEDED → `deleted` with the job's counts and the
    verify task enqueued on commit; FAILED → `failed`. Jobs that belong to no request are ignored."""
    request = ErasureRequest.objects.filter(deletion_job_id=job.id).first()
    if request is None:
        return None
    try:
        if job.status == DeletionJob.Status.SUCCEEDED:
            request = _cas(
                request,
                Action.COMPLETE_DELETION,
                guard=Q(approved_at__isnull=False),
                deleted_at=timezone.now(),
                deleted_count=job.deleted_count,
                held_count=job.held_count,
                history_purged_count=job.history_purged_count,
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
            _enqueue_verify(request)
        elif job.status == DeletionJob.Status.FAILED:
            request = erasure_request_fail(request=request, reason=job.error or "deletion job failed")
    except IllegalTransition:
        logger.warning("job finished for a request in another state", extra={"request": str(request.id)})
    return request


@transaction.atomic
def erasure_request_fail(*, request: ErasureRequest, reason: str) -> ErasureRequest:
    """→ `failed` (retries exhausted). `reason` is a class name or a fixed phrase, never data. The erasure
    WriteBlock stays: the subject remains frozen until a retry finishes the work."""
    request = _cas(request, Action.FAIL, failed_at=timezone.now(), failure_reason=reason[:200])
    audit_append(
        actor="worker",
        action="request.failed",
        request=request,
        data={"state": request.state, "reason": reason},
    )
    logger.warning("erasure request failed", extra={"request": str(request.id)})
    return request


def _residue(request: ErasureRequest, user_ids: list[str]) -> dict[str, Any]:
    """Counts of what of the subject remains, table by table."""
    scope = engine_scope(request)
    memories = scope_queryset(scope)
    job_scope = Q()
    for user_id in user_ids:
        job_scope |= Q(scope__user_id=user_id) | Q(scope__user_id__contains=[user_id])
    deleted_since = MemoryHistory.objects.filter(
        event=MemoryHistory.Event.DELETE, created_at__gte=request.approved_at
    ).values("memory_id")
    return {
        "memories_remaining": memories.filter(legal_hold__isnull=True).count(),
        "memories_held": memories.filter(legal_hold__isnull=False).count(),
        "history_text_remaining": MemoryHistory.objects.filter(memory_id__in=deleted_since)
        .filter(Q(old_memory__isnull=False) | Q(new_memory__isnull=False))
        .count(),
        "deletion_jobs_with_clear_scope": DeletionJob.objects.filter(job_scope).count(),
        "write_blocks_in_clear": WriteBlock.objects.filter(user_id_hmac__in=user_ids).count(),
    }


CHECKED_TABLES = ["memories_memory", "memories_history", "memories_deletionjob", "memories_writeblock"]


def erasure_request_verify(*, request_id: Any) -> ErasureRequest:
    """Confirms that nothing of the subject remains, then → `verified`. A straggler (a row written despite the
    write block) gets a final sweep through the engine first. Raises VerificationIncomplete when residue stays.

    Side effects: possibly a sweep job; then in one transaction: `verified` with `verification`, the suppression
    block placed (if asked) and the erasure block lifted, the completion mail (if an e-mail), the request
    pseudonymised, audit entries.

    Two deliveries of the verification (a retry and a sweeper re-enqueue) may run at once: the request row is
    locked for the straggler sweep and again for the move, so the counters are never updated from a stale read and
    only one of them verifies; the other gets IllegalTransition."""
    with transaction.atomic():
        request = ErasureRequest.objects.select_for_update().get(id=request_id)
        if request.state != State.DELETED:
            raise IllegalTransition(request, Action.VERIFY)
        user_ids = list(request.subject_user_ids)
        residue = _residue(request, user_ids)
        swept = 0
        if residue["memories_remaining"]:
            result = engine.memories_delete_now(
                kind=DeletionJob.Kind.ERASURE, scope=engine_scope(request), requested_by=request.reference
            )
            swept = len(result.deleted_ids)
            ErasureRequest.objects.filter(id=request.id).update(
                deleted_count=(request.deleted_count or 0) + swept,
                history_purged_count=(request.history_purged_count or 0) + result.job.history_purged_count,
                deleted_ids_digest=engine.chain_digest(
                    request.deleted_ids_digest or "0" * 64, result.deleted_ids
                ),
            )
            logger.warning(
                "final sweep removed stragglers", extra={"request": str(request.id), "count": swept}
            )
    with transaction.atomic():
        request = ErasureRequest.objects.select_for_update().get(id=request_id)
        if request.state != State.DELETED:
            raise IllegalTransition(request, Action.VERIFY)
        residue = _residue(request, user_ids)
        if residue["memories_remaining"] or residue["history_text_remaining"]:
            raise VerificationIncomplete("residue after the final sweep")
        if residue["deletion_jobs_with_clear_scope"] or residue["write_blocks_in_clear"]:
            raise VerificationIncomplete("other jobs still hold the subject's identifiers")
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
        request = _cas(request, Action.VERIFY, verified_at=timezone.now(), verification=verification)
        if request.suppress:
            write_block_place(
                user_ids=user_ids, kind=WriteBlock.Kind.SUPPRESSION, reference=request.reference
            )
        write_block_lift(reference=request.reference, kind=WriteBlock.Kind.ERASURE)
        audit_append(
            actor="worker",
            action="request.verified",
            request=request,
            data={"state": request.state, "verification": verification, "suppressed": request.suppress},
        )
        if request.subject_email:
            sent = _mail(
                subject=f"Your erasure request {request.reference} is complete",
                body=(
                    f"Your personal data covered by request {request.reference} has been erased "
                    f"({request.deleted_count or 0} items).\n"
                    + (
                        f"{request.held_count} items are kept under a legal hold (GDPR Art. 17(3)).\n"
                        if request.held_count
                        else ""
                    )
                ),
                to=request.subject_email,
            )
            if sent:
                request.notified_at = timezone.now()
                request.save(update_fields=["notified_at", "updated_at"])
        request = erasure_request_pseudonymise(request=request, actor="worker")
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
            _enqueue_verify_id(str(request_id))
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
    request.scoped_by_agent = hashed(request.scoped_by_agent)
    request.scoped_by_run = hashed(request.scoped_by_run)
    request.pseudonymised_at = timezone.now()
    request.save(
        update_fields=[
            "subject_user_ids",
            "subject_email",
            "scope",
            "scoped_by_agent",
            "scoped_by_run",
            "pseudonymised_at",
            "updated_at",
        ]
    )
    audit_append(actor=actor, action="request.pseudonymised", request=request, data={"state": request.state})
    return request


def erasure_request_check_action(*, request: ErasureRequest, action: str) -> None:
    """Raises IllegalTransition if `action` is not possible now (for callers that validate before input)."""
    if not action_allowed(request, action):
        raise IllegalTransition(request, action)


# --- Legal holds (GDPR Art. 17(3)) ---------------------------------------------------------------------------


@transaction.atomic
def legal_hold_create(*, scope: dict[str, Any], reason: str, note: str = "", actor: str) -> LegalHold:
    """Places a hold on every memory in `scope` not already held; an erasure then skips and counts them.
    Side effects: a LegalHold row (scope kept pseudonymised only), memories' legal_hold set, one audit entry."""
    if reason not in LegalHold.Reason.values:
        raise ErasureInputError("reason", f"must be one of {', '.join(LegalHold.Reason.values)}")
    _refuse_nul("scope", scope)
    _refuse_nul("note", note)
    try:
        scope = validate_scope(scope)
    except ScopeError as exc:
        raise ErasureInputError("scope", str(exc)) from None
    hold = legal_hold_place(scope=scope, reason=reason, note=note, placed_by=actor[:150])
    audit_append(
        actor=actor,
        action="legal_hold.placed",
        data={
            "hold": str(hold.id),
            "reason": reason,
            "memories_held": hold.memories_held,
            "scope": hold.scope_pseudonymised,
        },
    )
    return hold


@transaction.atomic
def legal_hold_release(*, hold: LegalHold, actor: str) -> tuple[LegalHold, int]:
    """Lifts a hold (its memories become erasable again); returns it with the number released. Lifting a lifted
    hold changes nothing and writes no audit entry. Side effects: memories' legal_hold cleared, one audit entry."""
    if hold.lifted_at is not None:
        return hold, 0
    released = Memory.objects.filter(legal_hold=hold).count()
    hold = legal_hold_lift(hold=hold, lifted_by=actor[:150])
    audit_append(
        actor=actor,
        action="legal_hold.lifted",
        data={"hold": str(hold.id), "reason": hold.reason, "memories_released": released},
    )
    return hold, released


__all__ = [
    "IllegalTransition",
    "IdentityNotVerified",
    "ErasureInputError",
    "VerificationIncomplete",
    "erasure_request_create",
    "erasure_request_verify_identity",
    "erasure_request_scope",
    "erasure_request_approve",
    "erasure_request_reject",
    "erasure_request_cancel",
    "erasure_request_retry",
    "erasure_request_extend",
    "erasure_request_verify",
    "erasure_request_fail",
    "erasure_request_pseudonymise",
    "erasure_request_job_finished",
    "erasure_requests_resume_stale",
    "engine_scope",
    "legal_hold_create",
    "legal_hold_release",
]
