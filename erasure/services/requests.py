"""The request's moves made by callers (API, pages): create, verify identity, scope, approve, reject, cancel,
extend, retry. Each is a compare-and-set in SQL and writes one audit entry (erasure/services/__init__.py)."""

import logging
import secrets
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from memories import engine
from memories.holds import held_q
from memories.models import DeletionJob, WriteBlock
from memories.pseudonyms import pseudonym, pseudonymise_scope
from memories.scope import scope_queryset
from memories.services import write_block_place

from .. import identity, notices
from ..audit import audit_append
from ..deadlines import acknowledge_due_date, due_date, extended_due_date
from ..models import (
    TRANSITIONS,
    Action,
    Channel,
    ErasureRequest,
    IdentityStatus,
    Regulation,
    RejectionReason,
)
from ..selectors import status_token_hash
from . import stores as connected_stores
from .common import NONE_KEY, compare_and_set, engine_scope
from .errors import ErasureInputError, IdentityNotVerified, IllegalTransition, SecondStaffRequired
from .validation import clean_scope, clean_subject
from .verification import verification_start

logger = logging.getLogger(__name__)


def _next_reference(year: int) -> str:
    with connection.cursor() as cur:
        cur.execute("SELECT nextval('erasure_reference_seq')")
        (number,) = cur.fetchone()
    return f"ER-{year}-{number:06d}"


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
    one audit entry; the follow-ups of erasure.notices.request_created (receipt with the secret status link and,
    for the form, the verification mail, sent after commit; the `new` staff alert)."""
    if regulation not in Regulation.values:
        raise ErasureInputError("regulation", f"must be one of {', '.join(Regulation.values)}")
    if channel not in Channel.values:
        raise ErasureInputError("channel", f"must be one of {', '.join(Channel.values)}")
    clean_ids, email = clean_subject(user_ids, email)
    narrowing = clean_scope(scope)
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
    notices.request_created(request=request, raw_token=raw_token)
    logger.info("erasure request created", extra={"request": str(request.id), "reference": request.reference})
    return request, raw_token


@transaction.atomic
def erasure_request_confirm_identity(
    *, request: ErasureRequest, actor: str, note: str = "", user_ids: list[str] | None = None
) -> ErasureRequest:
    """Records that staff confirmed the subject's identity (state stays `received`): `user_ids` are attached and
    every user id of the request counts as confirmed. Also possible after the subject proved the e-mail, while
    ids remain unconfirmed. Side effects: the row's identity fields, one audit entry, the move's follow-ups."""
    now = timezone.now()
    pending = request.identity_status == IdentityStatus.PENDING
    request = compare_and_set(
        request,
        Action.CONFIRM_IDENTITY,
        seen={"identity_status": request.identity_status}
        if pending
        else {"subject_confirmed_pseudonyms": request.subject_confirmed_pseudonyms},
        **identity.staff_confirmation_updates(request, user_ids),
        identity_status=IdentityStatus.VERIFIED,
        identity_verified_at=now,
        identity_verified_by=actor[:150],
        identity_note=note,
    )
    audit_append(
        actor=actor,
        action="request.identity_verified",
        request=request,
        data={"state": request.state, "method": "staff", "user_id_count": len(request.subject_user_ids)},
    )
    notices.request_event(request=request, event="identity_verified")
    return request


def erasure_request_count(*, request: ErasureRequest) -> dict[str, Any]:
    """Exact counts of what the erasure would remove now: total, held, per agent_id, per run_id, per user_id (four
    aggregate queries over the engine's own filter)."""
    scope = engine_scope(request)
    qs = scope_queryset(scope)
    totals = qs.aggregate(total=Count("id"), held=Count("id", filter=held_q(scope)))  # holds are rules
    by_agent = {
        (row["agent_id"] if row["agent_id"] is not None else NONE_KEY): row["n"]
        for row in qs.order_by().values("agent_id").annotate(n=Count("id"))
    }
    by_run = {
        (row["run_id"] if row["run_id"] is not None else NONE_KEY): row["n"]
        for row in qs.order_by().values("run_id").annotate(n=Count("id"))
    }
    by_user = {row["user_id"]: row["n"] for row in qs.order_by().values("user_id").annotate(n=Count("id"))}
    return {
        "total": totals["total"],
        "held": totals["held"],
        "by_agent": by_agent,
        "by_run": by_run,
        "by_user": by_user,
    }


@transaction.atomic
def erasure_request_scope(*, request: ErasureRequest, actor: str) -> ErasureRequest:
    """Computes exact counts and moves the request to `scoped` (again, if already scoped and not approved).
    Raises IdentityNotVerified before identity verification. Side effects: counts on the row, one audit entry."""
    if (
        request.state in TRANSITIONS[Action.SCOPE].sources
        and request.identity_status != IdentityStatus.VERIFIED
    ):
        request.refresh_from_db()
        if request.identity_status != IdentityStatus.VERIFIED:
            raise IdentityNotVerified(request, Action.SCOPE, "the subject's identity must be verified first")
    if request.state in TRANSITIONS[Action.SCOPE].sources and not identity.user_ids_confirmed(request):
        raise IdentityNotVerified(
            request,
            Action.SCOPE,
            "the subject's user ids must be confirmed first (verify-identity with user_ids)",
        )
    counts = connected_stores.erasure_request_count_stores(request=request)  # every enabled store, added up
    request = compare_and_set(
        request,
        Action.SCOPE,
        scoped_at=timezone.now(),
        scoped_total=counts["total"],
        scoped_held=counts["held"],
        scoped_by_agent=counts["by_agent"],
        scoped_by_run=counts["by_run"],
        scoped_stores=counts["stores"],
        scoped_by_user=counts.get("by_user", {}),
        scoped_by=actor[:150],
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
            "stores": [
                {"store": e["store"], "total": e["total"], "held": e["held"]} for e in counts["stores"]
            ],
        },
    )
    return request


@transaction.atomic
def erasure_request_approve(*, request: ErasureRequest, actor: str) -> ErasureRequest:
    """Starts the erasure (state stays `scoped`; the workers move it on). Side effects, in one transaction:
    approved_at/approved_by; an erasure WriteBlock per user_id (keyed hashes) so no new memory of the subject
    is accepted; one DeletionJob (kind=erasure) enqueued on commit; one audit entry.

    With APPROVAL_REQUIRES_SECOND_STAFF, raises SecondStaffRequired when `actor` is the one who scoped (the row is
    locked first, so a concurrent re-scope cannot slip between the check and the move)."""
    scoped_by = (
        ErasureRequest.objects.select_for_update()
        .filter(id=request.id)
        .values_list("scoped_by", flat=True)
        .first()
    )
    if settings.APPROVAL_REQUIRES_SECOND_STAFF and scoped_by == actor[:150]:
        raise SecondStaffRequired(
            request,
            Action.APPROVE,
            "four-eyes approval: the request must be approved by another team member than the one who scoped it",
        )
    request = compare_and_set(
        request,
        Action.APPROVE,
        approved_at=timezone.now(),
        approved_by=actor[:150],
    )
    write_block_place(
        user_ids=list(request.subject_user_ids),
        kind=WriteBlock.Kind.ERASURE,
        reference=request.reference,
        scope=request.scope,
    )
    job = engine.deletion_job_create(
        kind=DeletionJob.Kind.ERASURE, scope=engine_scope(request), requested_by=request.reference
    )
    ErasureRequest.objects.filter(id=request.id).update(deletion_job=job)
    request.deletion_job = job
    store_jobs = connected_stores.erasure_request_stores_start(request=request)  # one job per connected store
    audit_append(
        actor=actor,
        action="request.approved",
        request=request,
        data={
            "state": request.state,
            "deletion_job": str(job.id),
            "store_jobs": [str(j.id) for j in store_jobs],
            "scoped_total": request.scoped_total,
            "scoped_held": request.scoped_held,
            "scoped_by": request.scoped_by,
            "four_eyes": settings.APPROVAL_REQUIRES_SECOND_STAFF,
        },
    )
    notices.request_event(request=request, event="approved")
    return request


@transaction.atomic
def erasure_request_reject(
    *, request: ErasureRequest, actor: str, reason: str, note: str = ""
) -> ErasureRequest:
    """→ `rejected` with one of DRP's reason codes. Side effects: the row, one audit entry."""
    if reason not in RejectionReason.values:
        raise ErasureInputError("reason", f"must be one of {', '.join(RejectionReason.values)}")
    request = compare_and_set(
        request,
        Action.REJECT,
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
    notices.request_event(request=request, event="rejected")
    return request


@transaction.atomic
def erasure_request_cancel(*, request: ErasureRequest, actor: str, note: str = "") -> ErasureRequest:
    """→ `cancelled`, only before the deletion started (approved_at empty). Side effects: the row, one audit
    entry."""
    request = compare_and_set(request, Action.CANCEL, cancelled_at=timezone.now())
    audit_append(
        actor=actor,
        action="request.cancelled",
        request=request,
        data={"state": request.state, "note_given": bool(note)},
    )
    notices.request_event(request=request, event="cancelled")
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
        request = compare_and_set(
            request,
            Action.EXTEND,
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
    notices.request_event(request=request, event="extended")
    return request


@transaction.atomic
def erasure_request_retry(*, request: ErasureRequest, actor: str) -> ErasureRequest:
    """From `failed`: when the deletion job failed, back to `scoped` (approved_at kept) and the job resumes from
    its saved cursor; when the job had finished and verification failed, back to `deleted` and verification is
    enqueued again. Side effects: the row, the job re-enqueued or the verify task, one audit entry."""
    if request.state not in TRANSITIONS[Action.RETRY].sources:
        raise IllegalTransition(request, Action.RETRY)
    job = DeletionJob.objects.filter(id=request.deletion_job_id).first() if request.deletion_job_id else None
    reopened = connected_stores.erasure_request_stores_retry(request=request)  # failed store jobs, sent again
    if job is not None and job.status == DeletionJob.Status.SUCCEEDED and not reopened:
        request = compare_and_set(request, Action.COMPLETE_DELETION, failure_reason="")
        verification_start(str(request.id))
        resumed = "verification"
    else:
        request = compare_and_set(request, Action.RETRY, failure_reason="")
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


@transaction.atomic
def erasure_request_assign(
    *, request: ErasureRequest, assignee: AbstractBaseUser | None, actor: str
) -> ErasureRequest:
    """Assigns an open request to a team member (`assignee` None: unassigned). Raises ErasureInputError (field
    `assignee`) for an account outside the privacy team. Side effects: assigned_to, one audit entry (usernames of
    staff only, as for actors)."""
    if assignee is not None and not (assignee.is_active and getattr(assignee, "is_staff", False)):
        raise ErasureInputError("assignee", "must be an active member of the privacy team")
    before = request.assigned_to.get_username() if request.assigned_to_id and request.assigned_to else None
    request = compare_and_set(request, Action.ASSIGN, assigned_to=assignee)
    audit_append(
        actor=actor,
        action="request.assigned",
        request=request,
        data={
            "state": request.state,
            "assigned_to": assignee.get_username() if assignee else None,
            "assigned_before": before,
        },
    )
    return request


def erasure_request_check_action(*, request: ErasureRequest, action: str) -> None:
    """Raises IllegalTransition if `action` is not possible now (for callers that validate before input)."""
    if not request.move_allowed(action):
        raise IllegalTransition(request, action)


# Staff action -> its service, called with (request, actor, cleaned input); the input holds `note` and `reason`
# where the action takes them.
_STAFF_ACTION_CALLS: dict[str, Callable[[ErasureRequest, str, dict[str, Any]], ErasureRequest]] = {
    Action.CONFIRM_IDENTITY: lambda r, a, d: erasure_request_confirm_identity(
        request=r, actor=a, note=d["note"], user_ids=d.get("user_ids") or None
    ),
    Action.SCOPE: lambda r, a, d: erasure_request_scope(request=r, actor=a),
    Action.APPROVE: lambda r, a, d: erasure_request_approve(request=r, actor=a),
    Action.REJECT: lambda r, a, d: erasure_request_reject(
        request=r, actor=a, reason=d["reason"], note=d["note"]
    ),
    Action.CANCEL: lambda r, a, d: erasure_request_cancel(request=r, actor=a, note=d["note"]),
    Action.RETRY: lambda r, a, d: erasure_request_retry(request=r, actor=a),
    Action.EXTEND: lambda r, a, d: erasure_request_extend(request=r, actor=a, reason=d["reason"]),
}


def erasure_request_act(
    *, request: ErasureRequest, action: str, actor: str, data: dict[str, Any]
) -> ErasureRequest:
    """Runs the staff action named `action` (one of STAFF_ACTIONS, as the API and the console name them in their
    URLs) with its cleaned input `data`. Side effects: those of the action's service."""
    return _STAFF_ACTION_CALLS[action](request, actor, data)
