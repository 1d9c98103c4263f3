"""Writes of the erasure workflow: one service per move of the lifecycle (erasure/models.py TRANSITIONS).

Every move is a compare-and-set in SQL (`UPDATE … WHERE id = … AND state = <expected>`): when no row matches,
someone else moved the request first and the caller gets IllegalTransition with the state as it is now. Every
service writes one audit entry holding ids, states, counts and pseudonyms only.

requests.py holds the moves made by callers, verification.py those made by the workers, holds.py the legal
holds, messages.py the subject's e-mails. Every public name is re-exported here, so callers import from
`erasure.services`. The path from a deletion job's end to `verified` is told in erasure/receivers.py.
"""

from .common import NONE_KEY, engine_scope
from .errors import (
    ErasureInputError,
    IdentityNotVerified,
    IllegalTransition,
    SecondStaffRequired,
    VerificationIncomplete,
)
from .holds import hold_release_erase, hold_release_keep, legal_hold_create, legal_hold_release
from .messages import status_link
from .requests import (
    erasure_request_act,
    erasure_request_approve,
    erasure_request_assign,
    erasure_request_cancel,
    erasure_request_check_action,
    erasure_request_confirm_identity,
    erasure_request_count,
    erasure_request_create,
    erasure_request_extend,
    erasure_request_reject,
    erasure_request_retry,
    erasure_request_scope,
)
from .validation import MAX_USER_ID_LENGTH, MAX_USER_IDS, NARROWING_KEYS
from .verification import (
    CHECKED_TABLES,
    erasure_request_fail,
    erasure_request_job_finished,
    erasure_request_pseudonymise,
    erasure_request_verify,
    erasure_requests_resume_stale,
    verification_start,
)

__all__ = [
    "CHECKED_TABLES",
    "MAX_USER_IDS",
    "MAX_USER_ID_LENGTH",
    "NARROWING_KEYS",
    "NONE_KEY",
    "IllegalTransition",
    "IdentityNotVerified",
    "ErasureInputError",
    "SecondStaffRequired",
    "VerificationIncomplete",
    "erasure_request_create",
    "erasure_request_confirm_identity",
    "erasure_request_count",
    "erasure_request_scope",
    "erasure_request_approve",
    "erasure_request_reject",
    "erasure_request_cancel",
    "erasure_request_retry",
    "erasure_request_extend",
    "erasure_request_assign",
    "erasure_request_check_action",
    "erasure_request_act",
    "erasure_request_verify",
    "erasure_request_fail",
    "erasure_request_pseudonymise",
    "erasure_request_job_finished",
    "erasure_requests_resume_stale",
    "verification_start",
    "engine_scope",
    "status_link",
    "legal_hold_create",
    "legal_hold_release",
    "hold_release_erase",
    "hold_release_keep",
]
