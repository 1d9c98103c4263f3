"""The privacy team's legal holds page: place a hold on a scope, list holds, lift one."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from memories.models import LegalHold

from .. import services
from ..forms import LegalHoldForm
from .staff_auth import staff_actor, staff_required

HOLDS_PAGE_SIZE = 25


def _memories(n: int) -> str:
    return f"{n} memory" if n == 1 else f"{n} memories"


@staff_required
@require_http_methods(["GET", "POST"])
def legal_holds(request: HttpRequest) -> HttpResponse:
    form = LegalHoldForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            hold = services.legal_hold_create(
                scope=form.cleaned_data["scope"],
                reason=form.cleaned_data["reason"],
                note=form.cleaned_data["note"],
                actor=staff_actor(request),
            )
        except services.ErasureInputError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, f"Hold placed on {_memories(hold.memories_held)}.")
            return redirect("erasure_pages:legal-holds")
    show_lifted = request.GET.get("lifted") == "1"
    holds = LegalHold.objects.all() if show_lifted else LegalHold.objects.filter(lifted_at__isnull=True)
    page = Paginator(holds, HOLDS_PAGE_SIZE).get_page(request.GET.get("page"))
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "erasure/staff/legal_holds.html",
        {"form": form, "page": page, "show_lifted": show_lifted, "nav": "holds"},
        status=status,
    )


@staff_required
@require_POST
def legal_hold_lift_view(request: HttpRequest, pk: str) -> HttpResponse:
    hold = get_object_or_404(LegalHold, pk=pk)
    if hold.lifted_at:
        messages.info(request, "This hold was already lifted.")
    else:
        _hold, released = services.legal_hold_release(hold=hold, actor=staff_actor(request))
        messages.success(request, f"Hold lifted: {_memories(released)} can be erased again.")
    return redirect("erasure_pages:legal-holds")
