"""The store registry and the per-store erasure jobs of connected stores (the built-in store's job is the engine's
DeletionJob). Imported by memories/models.py so that Django registers them in the `memories` app.

A store's secrets are held only as a Fernet token (memories/stores/crypto.py) in `secrets_encrypted`: no API,
page, admin view, log line or audit row ever shows them.
"""

import uuid

from django.db import models
from django.db.models import Q


class Store(models.Model):
    """A memory store an erasure reaches: the built-in one (always present, name `builtin`) or a connected Mem0
    deployment."""

    class Kind(models.TextChoices):
        BUILTIN = "builtin", "built-in store"
        MEM0_OSS = "mem0_oss", "Mem0 OSS deployment"
        MEM0_PLATFORM = "mem0_platform", "Mem0 Platform or Mem0-compatible REST service"

    BUILTIN_NAME = "builtin"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # What the connector needs, without secrets (memories/stores/registry.py validates it per kind).
    config = models.JSONField(default=dict, blank=True)
    secrets_encrypted = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    last_check_ok = models.BooleanField(null=True, blank=True)
    last_check_detail = models.CharField(max_length=300, blank=True)
    last_check_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            # Exactly one built-in store.
            models.UniqueConstraint(fields=["kind"], condition=Q(kind="builtin"), name="store_one_builtin"),
        ]

    def __str__(self) -> str:
        return f"store {self.name} ({self.kind})"

    @property
    def is_builtin(self) -> bool:
        return self.kind == self.Kind.BUILTIN

    @property
    def has_secrets(self) -> bool:
        return bool(self.secrets_encrypted)


class StoreJob(models.Model):
    """One erasure of a scope in one connected store, resumable: the connector's resume `state` and the counters
    are saved by each checkpoint in one transaction with the ids deleted (StoreJobId, unique per job), so a worker
    killed at any instant resumes with exact counts. `digest` is the sha256 of the deleted ids when it ends."""

    class Status(models.TextChoices):
        PENDING = "PENDING"
        RUNNING = "RUNNING"
        SUCCEEDED = "SUCCEEDED"
        FAILED = "FAILED"

    OPEN = (Status.PENDING, Status.RUNNING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="jobs")
    # The erasure request's reference (never a subject id), like DeletionJob.requested_by.
    requested_by = models.CharField(max_length=150)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    # The scope in clear while the job is not finished; dropped when it succeeds.
    scope = models.JSONField(null=True, blank=True)
    scope_pseudonymised = models.JSONField(default=dict)
    state = models.JSONField(default=dict, blank=True)
    scoped_total = models.BigIntegerField(default=0)
    deleted_count = models.BigIntegerField(default=0)
    held_count = models.BigIntegerField(default=0)
    history_rows_purged = models.BigIntegerField(default=0)
    entity_rows_purged = models.BigIntegerField(default=0)
    messages_purged = models.BigIntegerField(default=0)
    digest = models.CharField(max_length=64, blank=True)
    verification = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(fields=["store", "requested_by"], name="storejob_one_per_store_request"),
        ]
        indexes = [
            models.Index(fields=["requested_by"], name="storejob_requested_by_idx"),
            models.Index(
                fields=["status", "heartbeat_at"],
                name="storejob_open_idx",
                condition=Q(status__in=["PENDING", "RUNNING"]),
            ),
        ]

    def __str__(self) -> str:
        return f"store job {self.id} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)


class StoreJobId(models.Model):
    """An id a store job deleted (the store's own memory id: random, no text, no subject identifier)."""

    id = models.BigAutoField(primary_key=True)
    job = models.ForeignKey(StoreJob, on_delete=models.CASCADE, related_name="deleted_ids")
    memory_id = models.CharField(max_length=128)

    class Meta:
        db_table = "memories_storejob_id"
        constraints = [models.UniqueConstraint(fields=["job", "memory_id"], name="storejobid_unique")]

    def __str__(self) -> str:
        return f"{self.memory_id} of {self.job_id}"
