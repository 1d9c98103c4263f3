"""The privacy team's console: request queue, new request, request detail and actions (legal holds and exports
are in staff_holds.py and staff_exports.py). Views validate with erasure.forms, call one service or selector,
and render."""

import logging
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ImproperlyConfigured
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from memories.scope import ScopeError

from .. import console, deadlines, selectors, services
from ..certificate import SIGNING_NOT_CONFIGURED, CertificateNotAvailable, certificate_issue
from ..certificate_supplement import supplement_download
from ..forms import (
    ApproveForm,
    AssignForm,
    BulkForm,
    CancelForm,
    ConfirmIdentityForm,
    ExtendForm,
    QueueFilterForm,
    RejectForm,
    StaffRequestForm,
)
from ..models import ErasureRequest, State
from ..services.stores import StoreUnreachable
from ..services.suppression import suppression_active
from .downloads import download_response
from .staff_auth import staff_actor, staff_required
from .staff_subjects import subject_context

logger = logging.getLogger(__name__)

QUEUE_PAGE_SIZE = 25


# --- privacy team: queue and new request ---------------------------------------------------------------------


@staff_required
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    filters = QueueFilterForm(request.GET or None)
    state = regulation = channel = None
    overdue: bool | None = None
    # console: search, sort, "assigned to me"
    reference, sort, assigned_to = "", "received", None
    if filters.is_valid():
        state = filters.cleaned_data["state"] or None
        regulation = filters.cleaned_data["regulation"] or None
        channel = filters.cleaned_data["channel"] or None
        overdue = True if filters.cleaned_data["overdue"] else None
        reference = filters.cleaned_data["q"]
        sort = filters.cleaned_data["sort"] or "received"
        assigned_to = request.user if filters.cleaned_data["mine"] else None
    qs = console.queue_list(
        state=state,
        regulation=regulation,
        overdue=overdue,
        channel=channel,
        reference=reference,
        assigned_to=assigned_to,
        sort=sort,
    )
    page = Paginator(qs, QUEUE_PAGE_SIZE).get_page(request.GET.get("page"))
    requests_on_page = list(page.object_list)
    duplicates = console.duplicates(requests_on_page)
    today = timezone.localdate()
    rows = []
    for r in requests_on_page:
        days = deadlines.days_left(r, today)
        rows.append(
            {
                "r": r,
                "days_left": days,
                "late": -days if days is not None and days < 0 else 0,
                "overdue": deadlines.is_overdue(r, today),
                # console: masked subject, duplicate flag, acknowledgement
                "subject": console.subject_masked(r),
                "duplicates": duplicates.get(r.id, []),
                "ack": console.acknowledgement(r, today),
            }
        )
    query = request.GET.copy()
    query.pop("page", None)
    unsorted = query.copy()
    unsorted.pop("sort", None)
    return render(
        request,
        "erasure/staff/queue.html",
        {
            "filters": filters,
            "page": page,
            "rows": rows,
            "query": query.urlencode(),
            "nav": "queue",
            "bulk_form": BulkForm(),
            "sort": sort,
            "unsorted_query": unsorted.urlencode(),
        },
    )


@staff_required
@require_http_methods(["GET", "POST"])
def request_new(request: HttpRequest) -> HttpResponse:
    form = StaffRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            erasure, _token = services.erasure_request_create(
                regulation=form.cleaned_data["regulation"],
                user_ids=form.cleaned_data["user_ids"],
                email=form.cleaned_data["email"] or "",
                scope=form.scope_fields() or None,
                suppress=form.cleaned_data["suppress"],
                channel="staff",
                actor=staff_actor(request),
            )
        except services.ErasureInputError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, f"Request {erasure.reference} created.")
            return redirect("erasure_pages:request-detail", pk=erasure.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "erasure/staff/request_new.html", {"form": form, "nav": "new"}, status=status)


# --- privacy team: request detail and actions ----------------------------------------------------------------

TIMELINE = [
    ("received_at", "Received"),
    ("acknowledged_at", "Acknowledged"),
    ("identity_verified_at", "Identity verified"),
    ("scoped_at", "Scoped"),
    ("approved_at", "Approved"),
    ("deleted_at", "Deleted"),
    ("verified_at", "Verified"),
    ("rejected_at", "Rejected"),
    ("cancelled_at", "Cancelled"),
    ("failed_at", "Failed"),
    ("extended_at", "Deadline extended"),
    ("notified_at", "Subject notified"),
    ("pseudonymised_at", "Identifiers pseudonymised"),
]


def _progress(erasure: ErasureRequest) -> dict[str, Any] | None:
    if not erasure.approved_at:
        return None
    data = dict(selectors.progress(erasure))
    deleted = data.get("deleted") or 0
    # Held memories are never deleted: the bar runs to what will be erased, not to everything in scope.
    to_erase = max(0, (data.get("total") or 0) - (data.get("held") or 0))
    data["to_erase"] = to_erase
    data["percent"] = (
        100
        if erasure.state in (State.DELETED, State.VERIFIED)
        else (min(100, round(100 * deleted / to_erase)) if to_erase else 0)
    )
    return data


def _action_forms(
    erasure: ErasureRequest, bound: dict[str, forms.Form] | None = None
) -> dict[str, forms.Form]:
    prefix = {
        "verify-identity": ConfirmIdentityForm,
        "reject": RejectForm,
        "cancel": CancelForm,
        "extend": ExtendForm,
    }
    out: dict[str, forms.Form] = {name: cls(prefix=name.replace("-", "_")) for name, cls in prefix.items()}
    out.update(bound or {})
    return out


def _detail_context(erasure: ErasureRequest, bound: dict[str, forms.Form] | None = None) -> dict[str, Any]:
    allowed = selectors.allowed_actions(erasure)
    forms_by_action = _action_forms(erasure, bound)
    days = deadlines.days_left(erasure)
    return {
        "erasure": erasure,
        "allowed": allowed,
        "confirm_identity_form": forms_by_action["verify-identity"],
        "reject_form": forms_by_action["reject"],
        "cancel_form": forms_by_action["cancel"],
        "extend_form": forms_by_action["extend"],
        "days_left": days,
        "late_days": -days if days is not None and days < 0 else 0,
        "overdue": deadlines.is_overdue(erasure),
        "progress": _progress(erasure),
        "running": erasure.is_running,
        "suppression_active": erasure.suppress and suppression_active(request=erasure),
        "timeline": [(label, getattr(erasure, f)) for f, label in TIMELINE if getattr(erasure, f)],
        "audit": list(erasure.audit_entries.order_by("id")),
        "by_agent": sorted((erasure.scoped_by_agent or {}).items()),
        "by_run": sorted((erasure.scoped_by_run or {}).items()),
        "nav": "queue",
        # console: readable audit trail and breakdown, assignment, four-eyes
        "audit_rows": console.audit_rows(erasure.audit_entries.order_by("id")),
        "breakdown": console.breakdown(erasure),
        "to_erase": _to_erase(erasure),
        "assign_form": AssignForm(initial={"assignee": erasure.assigned_to_id}),
        "four_eyes": settings.APPROVAL_REQUIRES_SECOND_STAFF,
        "duplicates": _duplicate_requests(erasure),
        **subject_context(erasure),
    }


def _duplicate_requests(erasure: ErasureRequest) -> list[ErasureRequest]:
    """The other open requests of the same subject (matched by keyed pseudonyms)."""
    references = console.duplicates([erasure]).get(erasure.id, [])
    return list(ErasureRequest.objects.filter(reference__in=references).order_by("received_at"))


def _to_erase(erasure: ErasureRequest) -> int | None:
    """What the approval erases: everything in scope minus what a hold keeps."""
    if erasure.scoped_total is None:
        return None
    return max(0, erasure.scoped_total - (erasure.scoped_held or 0))


@staff_required
@require_GET
def request_detail(request: HttpRequest, pk: str) -> HttpResponse:
    erasure = get_object_or_404(ErasureRequest, pk=pk)
    return render(request, "erasure/staff/request_detail.html", _detail_context(erasure))


@staff_required
@require_GET
def request_progress(request: HttpRequest, pk: str) -> JsonResponse:
    """Polled by static/js/progress.js while a deletion runs: counts and states only."""
    erasure = get_object_or_404(ErasureRequest, pk=pk)
    data = _progress(erasure) or {}
    return JsonResponse(
        {
            "state": erasure.state,
            "deleted": data.get("deleted"),
            "total": data.get("total"),
            "job_status": data.get("job_status"),
            "percent": data.get("percent"),
            "stores": data.get("stores") or [],
            "to_erase": data.get("to_erase"),
            "held": data.get("held"),
            "running": erasure.is_running,
        }
    )


@staff_required
@require_GET
def request_certificate(request: HttpRequest, pk: str) -> HttpResponseBase:
    """The signed certificate of a verified request (?format=pdf for the PDF), as the API issues it."""
    erasure = get_object_or_404(ErasureRequest, pk=pk)
    fmt = "pdf" if request.GET.get("format") == "pdf" else "json"
    try:
        return download_response(certificate_issue(request=erasure, actor=staff_actor(request), fmt=fmt))
    except CertificateNotAvailable:
        messages.error(request, "A certificate is issued only once the request is verified.")
    except ImproperlyConfigured:
        messages.error(request, SIGNING_NOT_CONFIGURED)
    return redirect("erasure_pages:request-detail", pk=erasure.pk)


@staff_required
def request_certificate_supplement(request: HttpRequest, pk: str, number: int) -> HttpResponseBase:
    """A signed supplement to the request's certificate (released memories erased later), as stored."""
    erasure = get_object_or_404(ErasureRequest, pk=pk)
    download = supplement_download(request=erasure, number=number, actor=staff_actor(request))
    if download is None:
        raise Http404("no such supplement")
    return download_response(download)


# action -> (form class or None, success message); services.erasure_request_act runs the action.
ACTIONS: dict[str, tuple[type[forms.Form] | None, str]] = {
    "verify-identity": (ConfirmIdentityForm, "Identity marked as verified."),
    "scope": (None, "Scope computed."),
    "approve": (ApproveForm, "Erasure approved: the deletion has started."),
    "reject": (RejectForm, "Request rejected."),
    "cancel": (CancelForm, "Request cancelled."),
    "retry": (None, "Deletion resumed."),
    "extend": (ExtendForm, "Deadline extended."),
}


def _approve_context(erasure: ErasureRequest, form: forms.Form, user: Any = None) -> dict[str, Any]:
    four_eyes = settings.APPROVAL_REQUIRES_SECOND_STAFF
    return {
        "erasure": erasure,
        "form": form,
        "to_erase": _to_erase(erasure),
        "held": erasure.scoped_held or 0,
        "breakdown": console.breakdown(erasure),
        "four_eyes": four_eyes,
        "same_staff": bool(four_eyes and user is not None and erasure.scoped_by == user.get_username()),
        "by_agent": sorted((erasure.scoped_by_agent or {}).items()),
        "by_run": sorted((erasure.scoped_by_run or {}).items()),
        "nav": "queue",
    }


@staff_required
@require_http_methods(["GET", "POST"])
def request_action(request: HttpRequest, pk: str, action: str) -> HttpResponse:
    if action not in ACTIONS:
        raise Http404("Unknown action")
    erasure = get_object_or_404(ErasureRequest, pk=pk)
    form_class, done = ACTIONS[action]
    if request.method == "GET":
        if action != "approve":
            return redirect("erasure_pages:request-detail", pk=erasure.pk)
        return render(
            request,
            "erasure/staff/approve_confirm.html",
            _approve_context(erasure, ApproveForm(), request.user),
        )

    prefix = None if action == "approve" else action.replace("-", "_")
    form = form_class(request.POST, prefix=prefix) if form_class else None
    if form is not None and not form.is_valid():
        if action == "approve":
            return render(
                request,
                "erasure/staff/approve_confirm.html",
                _approve_context(erasure, form, request.user),
                status=400,
            )
        context = _detail_context(erasure, {action: form})
        context["open_action"] = action
        return render(request, "erasure/staff/request_detail.html", context, status=400)
    try:
        services.erasure_request_act(
            request=erasure, action=action, actor=staff_actor(request), data=form.cleaned_data if form else {}
        )
    except services.SecondStaffRequired:
        messages.error(
            request,
            f"Cannot approve {erasure.reference}: you scoped it, and approval needs a second team member "
            "(four-eyes approval is on).",
        )
        return redirect("erasure_pages:request-action", pk=erasure.pk, action="approve")
    except services.IllegalTransition as exc:
        allowed = ", ".join(exc.allowed_actions) or "none"
        messages.error(
            request,
            f"Cannot {action.replace('-', ' ')} {erasure.reference}: it is now {exc.state}. "
            f"Actions possible now: {allowed}.",
        )
    except (ScopeError, services.ErasureInputError) as exc:
        messages.error(request, f"Cannot {action.replace('-', ' ')}: {exc}")
    except StoreUnreachable as exc:  # a connected store could not be counted
        messages.error(request, f"Cannot {action.replace('-', ' ')}: {exc.message}")
    else:
        messages.success(request, done)
    return redirect("erasure_pages:request-detail", pk=erasure.pk)
