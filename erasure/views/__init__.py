"""Server-rendered pages: the data subject's request form and status page (subject.py), and the privacy team's
console: sign-in (staff_auth.py), queue and requests (staff.py), legal holds (staff_holds.py) and audit
exports (staff_exports.py)."""

from .staff import (
    queue,
    request_action,
    request_certificate,
    request_certificate_supplement,
    request_detail,
    request_new,
    request_progress,
)
from .staff_auth import StaffLoginView
from .staff_console import bulk_action, dashboard, request_assign
from .staff_exports import export_download, exports
from .staff_holds import hold_release_decide, legal_hold_lift_view, legal_holds
from .staff_stores import store_disable_view, store_edit, store_test_view, stores
from .subject import (
    subject_request,
    subject_status,
    subject_submitted,
)

__all__ = [
    "bulk_action",
    "dashboard",
    "request_assign",
    "request_certificate",
    "request_certificate_supplement",
    "StaffLoginView",
    "export_download",
    "exports",
    "hold_release_decide",
    "legal_hold_lift_view",
    "legal_holds",
    "queue",
    "request_action",
    "request_detail",
    "request_new",
    "request_progress",
    "store_disable_view",
    "store_edit",
    "store_test_view",
    "stores",
    "subject_request",
    "subject_status",
    "subject_submitted",
]
