"""Models of the compliance operations: stored certificates, memory retention policies and their runs.

Imported by erasure/models.py (so Django registers them under the `erasure` app); they hold no subject identifier
in clear: a certificate carries pseudonyms only, a retention policy names an entity scope chosen by staff.
"""

import uuid

from django.db import models


class Certificate(models.Model):
    """The signed certificate of a verified request, issued once and stored: every download returns `document`
    byte for byte (the PDF is rendered from it deterministically)."""

    request = models.OneToOneField(
        "erasure.ErasureRequest", on_delete=models.CASCADE, related_name="certificate_record"
    )
    reference = models.CharField(max_length=20)
    verified_at = models.DateTimeField()
    issued_at = models.DateTimeField()
    key_id = models.CharField(max_length=64)
    # The JSON document as served (ASCII, sorted keys, indented): what the signature and the sha256 cover.
    document = models.TextField()
    sha256 = models.CharField(max_length=64)

    class Meta:
        indexes = [models.Index(fields=["verified_at", "id"], name="certificate_verified_idx")]

    def __str__(self) -> str:
        return f"certificate {self.reference}"


class CertificateSupplement(models.Model):
    """A signed supplement to a request's stored certificate (which stays as issued): the erasure, under the same
    request, of memories a lifted legal hold released. Its document names the certificate it supplements (sha256)
    and verifies offline like a certificate (same envelope, own signature and key id)."""

    request = models.ForeignKey(
        "erasure.ErasureRequest", on_delete=models.CASCADE, related_name="certificate_supplements"
    )
    release = models.OneToOneField("erasure.HoldRelease", on_delete=models.PROTECT, related_name="supplement")
    number = models.PositiveIntegerField()  # 1, 2, … per request
    issued_at = models.DateTimeField()
    key_id = models.CharField(max_length=64)
    document = models.TextField()  # as served; what the signature and the sha256 cover
    sha256 = models.CharField(max_length=64)

    class Meta:
        ordering = ["request", "number"]
        constraints = [
            models.UniqueConstraint(fields=["request", "number"], name="certificate_supplement_once")
        ]

    def __str__(self) -> str:
        return f"certificate supplement {self.number} of {self.request_id}"


class RetentionPolicy(models.Model):
    """Memories matching `scope` (entity filters, as the deletion engine takes them) older than max_age_days are
    erased by the engine on schedule (RETENTION_INTERVAL_SECONDS) or on demand."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True)
    scope = models.JSONField()
    max_age_days = models.PositiveIntegerField()
    enabled = models.BooleanField(default=True)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"retention policy {self.name}"


class RetentionRun(models.Model):
    """One run of a policy: its cutoff, the engine job that erased, and the job's counts and deleted-ids digest."""

    class Status(models.TextChoices):
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule"
        MANUAL = "manual"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    policy = models.ForeignKey(RetentionPolicy, on_delete=models.PROTECT, related_name="runs")
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    requested_by = models.CharField(max_length=150)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    cutoff = models.DateTimeField()  # memories created before this were in scope
    deletion_job = models.OneToOneField(
        "memories.DeletionJob", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    deleted_count = models.BigIntegerField(default=0)
    held_count = models.BigIntegerField(default=0)
    history_purged_count = models.BigIntegerField(default=0)
    digest = models.CharField(max_length=64, blank=True)
    error = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["policy", "-started_at"], name="retentionrun_policy_idx")]

    def __str__(self) -> str:
        return f"retention run {self.id} ({self.status})"
