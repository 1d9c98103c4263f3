"""The exceptions of the erasure services: IllegalTransition answers 409 and ErasureInputError 400 (API and
pages); VerificationIncomplete makes the verify task retry."""

from ..models import ErasureRequest
from ..selectors import allowed_actions


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


class SecondStaffRequired(IllegalTransition):
    """Four-eyes approval (APPROVAL_REQUIRES_SECOND_STAFF): the approver is the one who scoped (HTTP 409)."""


class ErasureInputError(ValueError):
    """Bad input for a service (HTTP 400), naming the field."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class VerificationIncomplete(Exception):
    """Data of the subject still found after the final sweep; the verify task retries later."""
