"""Authorized agents, their data rights requests and the outbox of status callbacks."""

import uuid

from django.db import models


class DrpAgent(models.Model):
    id = models.BigAutoField(primary_key=True)
    agent_id = models.CharField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    verify_key = models.CharField(max_length=64)  # base64 Ed25519 verify key (public)
    # Only a trusted agent's `email_verified: true` counts as evidence of the subject's identity.
    trusted = models.BooleanField(default=False)
    enabled = models.BooleanField(default=True)
    token_hash = models.CharField(max_length=64, blank=True)  # sha256 of the pair-wise bearer token
    token_issued_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["agent_id"]

    def __str__(self) -> str:
        return self.agent_id


class DrpRequest(models.Model):
    """One exercise of one agent. Holds no identity claim in clear: the e-mail goes to the erasure request (which
    pseudonymises it like every identifier) and here only as a keyed hash; other claims are dropped."""

    request_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agent = models.ForeignKey(DrpAgent, on_delete=models.PROTECT, related_name="requests")
    erasure = models.OneToOneField(
        "erasure.ErasureRequest", null=True, blank=True, on_delete=models.PROTECT, related_name="drp"
    )
    exercise = models.CharField(max_length=40)
    regime = models.CharField(max_length=40, blank=True)
    agent_request_id = models.CharField(max_length=200, blank=True)
    drp_version = models.CharField(max_length=20, blank=True)
    status_callback = models.URLField(max_length=500, blank=True)
    email_verified = models.BooleanField(default=False)
    claims_pseudonymised = models.JSONField(default=dict, blank=True)  # {"email": hmac, "claims": [names]}
    # For exercises answered without an erasure request (denied at once): the final status.
    status = models.CharField(max_length=12, blank=True)
    reason = models.CharField(max_length=24, blank=True)
    processing_details = models.CharField(max_length=500, blank=True)
    received_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    final_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return str(self.request_id)


class DrpCallback(models.Model):
    """One status change to POST to the agent's status_callback (a snapshot of the status object, which holds no
    personal data). Retried with back-off for more than a day; a newer successful one supersedes older ones."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed"
        SUPERSEDED = "superseded"

    id = models.BigAutoField(primary_key=True)
    drp_request = models.ForeignKey(DrpRequest, on_delete=models.CASCADE, related_name="callbacks")
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["status", "updated_at"], name="drp_callback_status_idx")]

    def __str__(self) -> str:
        return f"drp callback #{self.id}"
