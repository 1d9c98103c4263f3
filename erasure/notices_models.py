"""The outbox of mails: notices to the data subject and alerts to the privacy team. A row is written in the same
transaction as the move it reports and sent after commit by a task; its status says whether the mail went out."""

from django.db import models
from django.db.models import Q


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # the last attempt failed; retried with back-off
    UNADDRESSED = "unaddressed"  # nobody to send it to (PRIVACY_TEAM_EMAILS empty): recorded, shown to staff
    # recipient sealed, nothing to send yet: the notice a verified request with held memories gets once a lifted
    # hold's memories are erased under it (the request's own e-mail is pseudonymised at verification)
    WAITING = "waiting"


class SubjectNotice(models.Model):
    class Kind(models.TextChoices):
        RECEIPT = "receipt", "receipt (acknowledgement, with the deadline)"
        VERIFICATION = "verification", "e-mail verification (link and code)"
        EXTENSION = "extension", "deadline extended (with the reason)"
        REJECTION = "rejection", "rejection (with the reason)"
        COMPLETION = "completion", "erasure complete"
        HOLD_RELEASE = "hold_release", "held data erased after a legal hold ended"

    id = models.BigAutoField(primary_key=True)
    request = models.ForeignKey("erasure.ErasureRequest", on_delete=models.CASCADE, related_name="notices")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    status = models.CharField(max_length=11, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(
        max_length=200, blank=True
    )  # exception class and SMTP code, never an address
    # The recipient (and a one-time secret such as the status token) encrypted with a key derived from
    # SECRET_KEY, wiped once the mail is sent: the request's own e-mail may be pseudonymised before then.
    sealed = models.TextField(blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["request", "kind"], name="subject_notice_once")]
        indexes = [models.Index(fields=["status", "updated_at"], name="subject_notice_status_idx")]

    def __str__(self) -> str:
        return f"notice {self.kind} #{self.id}"


class StaffAlert(models.Model):
    class Kind(models.TextChoices):
        NEW = "new", "new request"
        ACK_DUE = "ack_due", "acknowledgement due"
        DUE_SOON = "due_soon", "due within 7 days"
        OVERDUE = "overdue", "overdue"
        FAILED = "failed", "erasure failed"
        DIGEST = "digest", "daily digest"

    id = models.BigAutoField(primary_key=True)
    request = models.ForeignKey(
        "erasure.ErasureRequest", null=True, blank=True, on_delete=models.CASCADE, related_name="staff_alerts"
    )
    kind = models.CharField(max_length=8, choices=Kind.choices)
    day = models.DateField(null=True, blank=True)  # the digest's day
    status = models.CharField(max_length=11, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "kind"], condition=Q(request__isnull=False), name="staff_alert_once"
            ),
            models.UniqueConstraint(
                fields=["kind", "day"], condition=Q(request__isnull=True), name="staff_alert_digest_once"
            ),
        ]
        indexes = [models.Index(fields=["status", "updated_at"], name="staff_alert_status_idx")]

    def __str__(self) -> str:
        return f"alert {self.kind} #{self.id}"
