"""Erasure requests, their allowed state moves, and the hash-chained append-only audit trail.

Personal fields (subject_user_ids, subject_email, scope, counts keyed by agent/run) are held in clear only while
the request needs them; once the request is verified and the subject notified they are replaced by keyed hashes
(erasure.services.erasure_request_pseudonymise).
"""

import uuid
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q


class State(models.TextChoices):
    RECEIVED = "received"
    SCOPED = "scoped"
    DELETED = "deleted"
    VERIFIED = "verified"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    FAILED = "failed"


class Action(models.TextChoices):
    # Words, one meaning each (the values are the API's and stay): staff *confirm* the subject's identity; the
    # workers *verify* a request (nothing of the subject remains: `verified`); a certificate is *authenticated*
    # (erasure.certificate), a signature *checked* (erasure.signing), the audit chain *recomputed* (erasure.audit).
    CONFIRM_IDENTITY = "verify-identity"
    SCOPE = "scope"
    APPROVE = "approve"
    REJECT = "reject"
    CANCEL = "cancel"
    RETRY = "retry"
    EXTEND = "extend"
    ASSIGN = (
        "assign"  # assignment to a team member (console; POST …/assign/ in the API, not an ACTIONS entry)
    )
    # Moves made by the workers, not by staff:
    COMPLETE_DELETION = "complete-deletion"
    VERIFY = "verify"
    FAIL = "fail"


class IdentityStatus(models.TextChoices):
    PENDING = "pending"
    VERIFIED = "verified"


class Move(NamedTuple):
    """One allowed move: the states it may start from, the state it leads to (None: the state does not change,
    the move only records something) and the conditions on other fields of the row (`guard`: Django lookups,
    checked in SQL by the compare-and-set and in Python for the actions offered)."""

    sources: frozenset[str]
    target: str | None
    guard: Mapping[str, Any] = MappingProxyType({})
    # A condition that SQL lookups cannot state (the subject's user ids confirmed, compared as keyed hashes):
    # checked in Python on the row as read, by the compare-and-set and for the actions offered alike.
    check: "Callable[[ErasureRequest], bool] | None" = None


def _identity_incomplete(request: "ErasureRequest") -> bool:
    """Staff can confirm identity while the subject's proof is pending or some of its user ids are unconfirmed."""
    from .identity import user_ids_confirmed

    return request.identity_status == IdentityStatus.PENDING or not user_ids_confirmed(request)


def _user_ids_confirmed(request: "ErasureRequest") -> bool:
    """Scoping needs every user id of the request confirmed (erasure.identity)."""
    from .identity import user_ids_confirmed

    return user_ids_confirmed(request)


_NOT_STARTED = MappingProxyType({"approved_at__isnull": True})
_STARTED = MappingProxyType({"approved_at__isnull": False})

# The allowed moves, in one table (STYLE.md rule 4): every service's compare-and-set, the actions offered to staff
# (selectors.allowed_actions) and "running" (ErasureRequest.is_running) derive from it.
TRANSITIONS: dict[str, Move] = {
    Action.CONFIRM_IDENTITY: Move(frozenset({State.RECEIVED}), None, check=_identity_incomplete),
    Action.SCOPE: Move(
        frozenset({State.RECEIVED, State.SCOPED}),
        State.SCOPED,
        MappingProxyType({"identity_status": IdentityStatus.VERIFIED, "approved_at__isnull": True}),
        check=_user_ids_confirmed,
    ),
    Action.APPROVE: Move(
        frozenset({State.SCOPED}), None, _NOT_STARTED
    ),  # starts the job; the workers move on
    Action.REJECT: Move(frozenset({State.RECEIVED, State.SCOPED}), State.REJECTED, _NOT_STARTED),
    Action.CANCEL: Move(frozenset({State.RECEIVED, State.SCOPED}), State.CANCELLED, _NOT_STARTED),
    # Back to `scoped`, the job resuming from its cursor; when the job had finished, retry is COMPLETE_DELETION
    # (FAILED → DELETED) and verification runs again (erasure.services.erasure_request_retry).
    Action.RETRY: Move(frozenset({State.FAILED}), State.SCOPED, _STARTED),
    Action.EXTEND: Move(
        frozenset({State.RECEIVED, State.SCOPED, State.FAILED}),
        None,
        MappingProxyType({"extended_at__isnull": True}),
    ),
    # Assignment records who works the request; any open state (added: console).
    Action.ASSIGN: Move(frozenset({State.RECEIVED, State.SCOPED, State.DELETED, State.FAILED}), None),
    Action.COMPLETE_DELETION: Move(frozenset({State.SCOPED, State.FAILED}), State.DELETED, _STARTED),
    Action.VERIFY: Move(frozenset({State.DELETED}), State.VERIFIED),
    # The workers hold a request exactly while it can fail: that is what "running" means (is_running).
    Action.FAIL: Move(frozenset({State.SCOPED, State.DELETED}), State.FAILED, _STARTED),
}


# Closed: no move starts from these states (verified, rejected, cancelled); no deadline runs for them.
CLOSED_STATES = frozenset(State.values) - frozenset().union(*(move.sources for move in TRANSITIONS.values()))


def _lookup_holds(instance: models.Model, lookup: str, value: Any) -> bool:
    """A guard lookup evaluated on an instance: `field` (equality) or `field__isnull`."""
    field, _, op = lookup.partition("__")
    current = getattr(instance, field)
    if op == "isnull":
        return (current is None) == bool(value)
    if op:
        raise ValueError(f"guard lookup {lookup!r}: only equality and __isnull are supported")
    return bool(current == value)


# The timestamps a request collects on its way to `verified`, in that order.
COMPLETION_TIMESTAMPS = (
    "received_at",
    "acknowledged_at",
    "identity_verified_at",
    "scoped_at",
    "approved_at",
    "deleted_at",
    "verified_at",
)
# Every per-state timestamp of a request, in the order the API's `timestamps` and the export's columns list them.
STATE_TIMESTAMPS = (
    *COMPLETION_TIMESTAMPS,
    "rejected_at",
    "cancelled_at",
    "failed_at",
    "notified_at",
    "pseudonymised_at",
    "extended_at",
)

STAFF_ACTIONS = (
    Action.CONFIRM_IDENTITY,
    Action.SCOPE,
    Action.APPROVE,
    Action.REJECT,
    Action.CANCEL,
    Action.RETRY,
    Action.EXTEND,
)


class Regulation(models.TextChoices):
    GDPR = "gdpr", "GDPR Art. 17"
    CCPA = "ccpa", "CCPA §1798.105"


class Channel(models.TextChoices):
    FORM = "form", "public request form"
    API = "api", "Erasure API"
    STAFF = "staff", "privacy-team UI"
    DRP = "drp", "Data Rights Protocol agent"


class RejectionReason(models.TextChoices):
    """The Data Rights Protocol's denial reason codes."""

    SUSPECTED_FRAUD = "suspected_fraud"
    INSUF_VERIFICATION = "insuf_verification"
    NO_MATCH = "no_match"
    CLAIM_NOT_COVERED = "claim_not_covered"
    OUTSIDE_JURISDICTION = "outside_jurisdiction"
    TOO_MANY_REQUESTS = "too_many_requests"
    OTHER = "other"


class ErasureRequest(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    reference = models.CharField(max_length=20, unique=True)  # ER-2026-000042, from a database sequence
    regulation = models.CharField(max_length=4, choices=Regulation.choices)
    state = models.CharField(max_length=10, choices=State.choices, default=State.RECEIVED)
    channel = models.CharField(max_length=5, choices=Channel.choices)
    created_by = models.CharField(max_length=150, blank=True)  # staff username / API key name / "form"

    # The subject, in clear until pseudonymised; the pseudonyms are computed at creation and kept for good.
    subject_user_ids = ArrayField(models.CharField(max_length=255), default=list, blank=True)
    subject_email = models.CharField(max_length=254, blank=True)
    subject_pseudonyms = models.JSONField(default=dict)  # {"user_ids": [hmac…], "email": hmac|None}
    # Optional narrowing of the erasure: {"agent_id", "app_id", "run_id", "metadata"}.
    scope = models.JSONField(default=dict, blank=True)
    scope_pseudonymised = models.JSONField(default=dict, blank=True)
    suppress = models.BooleanField(default=False)

    identity_status = models.CharField(
        max_length=8, choices=IdentityStatus.choices, default=IdentityStatus.PENDING
    )
    identity_note = models.TextField(blank=True)
    identity_verified_by = models.CharField(max_length=150, blank=True)
    # Keyed hashes of the user ids shown to be the subject's (erasure/identity.py); scoping needs all of them.
    subject_confirmed_pseudonyms = ArrayField(models.CharField(max_length=64), default=list, blank=True)

    # A timestamp for every state reached (and for the steps in between).
    received_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    identity_verified_at = models.DateTimeField(null=True, blank=True)
    scoped_at = models.DateTimeField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    rejected_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)
    pseudonymised_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.CharField(max_length=150, blank=True)
    # console: who scoped (four-eyes approval compares it with the approver) and who works the request
    scoped_by = models.CharField(max_length=150, blank=True)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_erasure_requests",
    )

    # Deadlines.
    due_at = models.DateField()
    acknowledge_due_at = models.DateField(null=True, blank=True)  # CCPA: 10 business days
    extended_at = models.DateTimeField(null=True, blank=True)
    extension_reason = models.TextField(blank=True)

    # Scoping (exact counts at scoping time).
    scoped_total = models.BigIntegerField(null=True, blank=True)
    scoped_held = models.BigIntegerField(null=True, blank=True)
    scoped_by_agent = models.JSONField(default=dict, blank=True)
    scoped_by_run = models.JSONField(default=dict, blank=True)
    # Per store: [{"store", "kind", "total", "by_agent", "by_run", "held"}] (erasure/services/stores.py).
    scoped_stores = models.JSONField(default=list, blank=True)
    scoped_by_user = models.JSONField(
        default=dict, blank=True
    )  # console: per user id, hashed when pseudonymised

    # Deletion and verification results (copied from the engine's job when it finishes).
    deletion_job = models.ForeignKey(
        "memories.DeletionJob", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    deleted_count = models.BigIntegerField(null=True, blank=True)
    held_count = models.BigIntegerField(null=True, blank=True)
    history_purged_count = models.BigIntegerField(null=True, blank=True)
    deleted_ids_digest = models.CharField(max_length=64, blank=True)
    verification = models.JSONField(default=dict, blank=True)

    rejection_reason = models.CharField(max_length=24, choices=RejectionReason.choices, blank=True)
    rejection_note = models.TextField(blank=True)
    failure_reason = models.CharField(max_length=200, blank=True)

    # The subject's secret status link: only a hash of the token is stored.
    status_token_hash = models.CharField(max_length=64, blank=True)

    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-received_at"]
        indexes = [
            models.Index(fields=["state", "due_at"], name="erasure_state_due_idx"),
            models.Index(fields=["regulation", "state"], name="erasure_regulation_idx"),
            models.Index(fields=["-received_at", "-id"], name="erasure_received_idx"),
            # Requests still holding identifiers (open or recently closed): what erasure.privacy looks through.
            models.Index(
                fields=["state"],
                name="erasure_clear_pii_idx",
                condition=models.Q(pseudonymised_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:  # never the subject: str() reaches logs and audit entries
        return self.reference

    # --- the lifecycle, from TRANSITIONS ---

    def move_allowed(self, action: str) -> bool:
        """Whether `action` is allowed from this instance's state and fields (as last read)."""
        move = TRANSITIONS[action]
        return (
            self.state in move.sources
            and all(_lookup_holds(self, lookup, value) for lookup, value in move.guard.items())
            and (move.check is None or move.check(self))
        )

    @staticmethod
    def move_filter(action: str, *, state: str) -> Q:
        """The SQL condition of the compare-and-set of `action` from `state`: still in that state, guard holding."""
        return Q(state=state, **TRANSITIONS[action].guard)

    @property
    def is_running(self) -> bool:
        """Approved and not yet verified or failed: the workers hold the request (it can still fail)."""
        return self.move_allowed(Action.FAIL)


class AuditEntry(models.Model):
    """One entry of the tamper-evident audit trail: hash-chained, append-only (a trigger refuses UPDATE and
    DELETE). `data` holds ids, states, counts and pseudonyms, never memory text or raw subject identifiers."""

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField()
    actor = models.CharField(max_length=150)  # staff username, "apikey:<name>", "worker", "form"
    action = models.CharField(max_length=64)
    # No database constraint: a request record purged after REQUEST_RETENTION_MONTHS (erasure.privacy) leaves its
    # entries, and their hashes, exactly as they were (the id stays as a plain value).
    request = models.ForeignKey(
        ErasureRequest,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="audit_entries",
    )
    reference = models.CharField(max_length=20, blank=True)
    data = models.JSONField(default=dict)
    prev_hash = models.CharField(max_length=64)
    entry_hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["created_at"], name="audit_created_idx")]

    def __str__(self) -> str:
        return f"audit #{self.id} {self.action}"


class HoldRelease(models.Model):
    """Memories an erasure kept because of a legal hold, released when that hold was lifted: the console offers to
    erase them under the original request (erasure.services.holds). Memory ids only, never the subject."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    hold = models.ForeignKey("memories.LegalHold", on_delete=models.PROTECT, related_name="+")
    request = models.ForeignKey(ErasureRequest, on_delete=models.PROTECT, related_name="hold_releases")
    memory_ids = ArrayField(models.UUIDField())
    created_at = models.DateTimeField(auto_now_add=True)
    # set when staff erased them under the request (the engine job doing it) or chose to keep them
    deletion_job = models.ForeignKey(
        "memories.DeletionJob", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_by = models.CharField(max_length=150, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"release {self.id} of hold {self.hold_id}"


from .compliance_models import (  # noqa: E402,F401  (registered here)
    Certificate,
    CertificateSupplement,
    RetentionPolicy,
    RetentionRun,
)

# The subject's identity proofs, notices and staff alerts, and the Data Rights Protocol's agents and requests
# live in their own modules; imported here so Django registers them with this app.
from .drp.models import DrpAgent, DrpCallback, DrpRequest  # noqa: E402
from .identity_models import IdentityChallenge  # noqa: E402
from .notices_models import StaffAlert, SubjectNotice  # noqa: E402

__all_subject_models__ = (IdentityChallenge, StaffAlert, SubjectNotice, DrpAgent, DrpCallback, DrpRequest)
