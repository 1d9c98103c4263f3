"""The console for a team: the week's dashboard, assignment of a request to a team member, and bulk actions over
the requests ticked in the queue. Each request of a bulk action goes through its own service (guards, audit),
and each one's outcome is reported."""

import uuid
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from .. import console, services
from ..forms import AssignForm, BulkForm
from ..models import ErasureRequest
from .staff_auth import staff_actor, staff_required


@staff_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    figures = console.dashboard(user=request.user)
    return render(request, "erasure/staff/dashboard.html", {**figures, "nav": "dashboard"})


@staff_required
@require_POST
def request_assign(request: HttpRequest, pk: str) -> HttpResponse:
    erasure = get_object_or_404(ErasureRequest, pk=pk)
    form = AssignForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a member of the privacy team.")
        return redirect("erasure_pages:request-detail", pk=erasure.pk)
    assignee = form.cleaned_data["assignee"]
    try:
        services.erasure_request_assign(request=erasure, assignee=assignee, actor=staff_actor(request))
    except services.IllegalTransition as exc:
        messages.error(request, f"Cannot assign {erasure.reference}: it is {exc.state}.")
    except services.ErasureInputError as exc:
        messages.error(request, f"Cannot assign: {exc.message}")
    else:
        who = assignee.get_username() if assignee else "nobody"
        messages.success(request, f"{erasure.reference} assigned to {who}.")
    return redirect("erasure_pages:request-detail", pk=erasure.pk)


def _one(erasure: ErasureRequest, data: dict[str, Any], actor: str) -> tuple[bool, str]:
    """Runs the bulk action on one request through its service: (done, what happened)."""
    try:
        if data["bulk_action"] == "assign":
            assignee = data["assignee"]
            services.erasure_request_assign(request=erasure, assignee=assignee, actor=actor)
            return True, f"assigned to {assignee.get_username() if assignee else 'nobody'}"
        erasure = services.erasure_request_extend(request=erasure, actor=actor, reason=data["reason"])
        return True, f"due date extended to {erasure.due_at:%-d %b %Y}"
    except services.IllegalTransition as exc:
        return False, f"not possible while it is {exc.state}"
    except services.ErasureInputError as exc:
        return False, exc.message


@staff_required
@require_POST
def bulk_action(request: HttpRequest) -> HttpResponse:
    form = BulkForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return redirect("erasure_pages:queue")
    wanted = []
    for raw in form.cleaned_data["ids"]:
        try:
            wanted.append(uuid.UUID(raw))
        except ValueError:
            continue
    found = {r.id: r for r in ErasureRequest.objects.filter(id__in=wanted).select_related("assigned_to")}
    actor = staff_actor(request)
    results = []
    for request_id in wanted:
        erasure = found.get(request_id)
        if erasure is None:
            continue
        done, outcome = _one(erasure, form.cleaned_data, actor)
        results.append({"erasure": erasure, "done": done, "outcome": outcome})
    missing = len(form.cleaned_data["ids"]) - len(results)
    context = {
        "results": results,
        "done": sum(1 for r in results if r["done"]),
        "refused": sum(1 for r in results if not r["done"]),
        "missing": missing,
        "action": dict(form.fields["bulk_action"].choices)[form.cleaned_data["bulk_action"]],  # type: ignore[attr-defined]
        "nav": "queue",
    }
    return render(request, "erasure/staff/bulk_result.html", context)
