"""Erasure requests, their allowed state moves, and the hash-chained append-only audit trail.

Personal fields (subject_user_ids, subject_email, scope, counts keyed by agent/run) are held in clear only while
the request needs them; once the request is verified and the subject notified they are replaced by keyed hashes
(erasure.services.erasure_request_pseudonymise).
"""

import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models


class State(models.TextChoices):
    RECEIVED = "received"
    SCOPED = "scoped"
    DELETED = "deleted"
    VERIFIED = "verified"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    FAILED = "failed"


class Action(models.TextChoices):
    VERIFY_IDENTITY = "verify-identity"
    SCOPE = "scope"
    APPROVE = "approve"
    REJECT = "reject"
    CANCEL = "cancel"
    RETRY = "retry"
    EXTEND = "extend"
    # Moves made by the workers, not by staff:
    COMPLETE_DELETION = "complete-deletion"
    VERIFY = "verify"
    FAIL = "fail"


# The allowed moves, in one table (STYLE.md rule 4): action -> (states it may start from, state it leads to).
# None as target means the state does not change (the action only records something).
TRANSITIONS: dict[str, tuple[frozenset[str], str | None]] = {
    Action.VERIFY_IDENTITY: (frozenset({State.RECEIVED}), None),
    Action.SCOPE: (frozenset({State.RECEIVED, State.SCOPED}), State.SCOPED),
    Action.APPROVE: (frozenset({State.SCOPED}), None),  # starts the job; the workers move it on
    Action.REJECT: (frozenset({State.RECEIVED, State.SCOPED}), State.REJECTED),
    Action.CANCEL: (frozenset({State.RECEIVED, State.SCOPED}), State.CANCELLED),
    Action.RETRY: (frozenset({State.FAILED}), None),
    Action.EXTEND: (frozenset({State.RECEIVED, State.SCOPED, State.FAILED}), None),
    Action.COMPLETE_DELETION: (frozenset({State.SCOPED, State.FAILED}), State.DELETED),
    Action.VERIFY: (frozenset({State.DELETED}), State.VERIFIED),
    Action.FAIL: (frozenset({State.SCOPED, State.DELETED}), State.FAILED),
}

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
    Action.VERIFY_IDENTITY,
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


class IdentityStatus(models.TextChoices):
    PENDING = "pending"
    VERIFIED = "verified"


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
        ]

    def __str__(self) -> str:  # never the subject: str() reaches logs and audit entries
        return self.reference


class AuditEntry(models.Model):
    """One entry of the tamper-evident audit trail: hash-chained, append-only (a trigger refuses UPDATE and
    DELETE). `data` holds ids, states, counts and pseudonyms, never memory text or raw subject identifiers."""

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField()
    actor = models.CharField(max_length=150)  # staff username, "apikey:<name>", "worker", "form"
    action = models.CharField(max_length=64)
    request = models.ForeignKey(
        ErasureRequest, null=True, blank=True, on_delete=models.PROTECT, related_name="audit_entries"
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


# The subject's identity proofs, notices and staff alerts, and the Data Rights Protocol's agents and requests
# live in their own modules; imported here so Django registers them with this app.
from .drp.models import DrpAgent, DrpCallback, DrpRequest  # noqa: E402
from .identity_models import IdentityChallenge  # noqa: E402
from .notices_models import StaffAlert, SubjectNotice  # noqa: E402

__all_subject_models__ = (IdentityChallenge, StaffAlert, SubjectNotice, DrpAgent, DrpCallback, DrpRequest)
