"""The subject's proof of controlling the request's e-mail address: one challenge per mail sent (a signed link and
a short code, both derived from the challenge's id with the server secret, so neither is stored)."""

from django.db import models


class IdentityChallenge(models.Model):
    id = models.UUIDField(primary_key=True)
    request = models.ForeignKey(
        "erasure.ErasureRequest", on_delete=models.CASCADE, related_name="identity_challenges"
    )
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)  # wrong codes entered
    used_at = models.DateTimeField(null=True, blank=True)
    superseded_at = models.DateTimeField(null=True, blank=True)  # a newer challenge was mailed

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["request", "-created_at"], name="identity_challenge_req_idx")]

    def __str__(self) -> str:
        return f"identity challenge {self.id}"
