"""The privacy team's legal holds page: place a hold on a scope, list holds with what each matches now, lift one
after a confirmation that says what the lift releases."""

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from memories.holds import hold_matching_count, legal_hold_releases
from memories.models import ENTITY_FIELDS, LegalHold
from memories.pseudonyms import pseudonym

from .. import services
from ..forms import LegalHoldForm
from ..models import HoldRelease
from .staff_auth import staff_actor, staff_required

HOLDS_PAGE_SIZE = 25
_SHOWN = 10  # characters of a pseudonym shown


def _memories(n: int) -> str:
    return f"{n} memory" if n == 1 else f"{n} memories"


def _masked(values: Any, *, hashed: bool) -> str:
    values = values if isinstance(values, list) else [values]
    return ", ".join(f"{(v if hashed else pseudonym(v))[:_SHOWN]}…" for v in values)


def hold_criteria(hold: LegalHold) -> list[tuple[str, str]]:
    """What the hold matches, as (field, shown value): subject identifiers (user ids, metadata) always as pseudonyms;
    other entity ids and dates in clear while the hold is active; everything as pseudonyms once lifted (the hold
    keeps only its pseudonymised scope then)."""
    clear = hold.scope if hold.is_active and hold.scope else None
    scope = clear or hold.scope_pseudonymised
    hashed = clear is None
    rows: list[tuple[str, str]] = []
    for key, value in scope.items():
        if key == "user_id" or (hashed and key in ENTITY_FIELDS):
            rows.append((key, "pseudonym " + _masked(value, hashed=hashed)))
        elif key in ENTITY_FIELDS:
            rows.append((key, ", ".join(value) if isinstance(value, list) else str(value)))
        elif key == "metadata":  # keys in clear while active; values always as pseudonyms
            shown = [
                f"{k[:_SHOWN] + '…' if hashed else k} = {_masked(v if hashed else repr(v), hashed=hashed)}"
                for k, v in value.items()
            ]
            rows.append(("metadata", "; ".join(shown)))
        elif key in ("memory_ids", "memory_ids_count"):
            rows.append(("memory ids", _memories(len(value) if key == "memory_ids" else int(value))))
        else:
            rows.append((key, str(value)))
    return rows


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
    releases = HoldRelease.objects.filter(decided_at__isnull=True).select_related("request", "hold")
    rows = [
        {
            "hold": hold,
            "criteria": hold_criteria(hold),
            "matching": hold_matching_count(hold) if hold.is_active else None,
        }
        for hold in page.object_list
    ]
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "erasure/staff/legal_holds.html",
        {
            "form": form,
            "page": page,
            "rows": rows,
            "releases": releases,
            "show_lifted": show_lifted,
            "nav": "holds",
        },
        status=status,
    )


@staff_required
@require_http_methods(["GET", "POST"])
def legal_hold_lift_view(request: HttpRequest, pk: str) -> HttpResponse:
    """GET: what the hold matches and what lifting it releases, with the button that lifts it. POST: lifts it."""
    hold = get_object_or_404(LegalHold, pk=pk)
    if hold.lifted_at:
        messages.info(request, "This hold was already lifted.")
        return redirect("erasure_pages:legal-holds")
    if request.method == "GET":
        matching = hold_matching_count(hold)
        releases = legal_hold_releases(hold)
        return render(
            request,
            "erasure/staff/legal_hold_lift.html",
            {
                "hold": hold,
                "criteria": hold_criteria(hold),
                "matching": matching,
                "releases": releases,
                "still_held": matching - releases,
                "nav": "holds",
            },
        )
    _hold, released = services.legal_hold_release(hold=hold, actor=staff_actor(request))
    messages.success(request, f"Hold lifted: {_memories(released)} can be erased again.")
    return redirect("erasure_pages:legal-holds")


@staff_required
@require_POST
def hold_release_decide(request: HttpRequest, pk: str, decision: str) -> HttpResponse:
    """Erase (under the original request) or keep the memories a lifted hold released from an erasure."""
    release = get_object_or_404(HoldRelease.objects.select_related("request"), pk=pk)
    if release.decided_at is not None:
        messages.info(request, "This was decided already.")
    elif decision == "erase":
        services.hold_release_erase(release=release, actor=staff_actor(request))
        count = _memories(len(release.memory_ids))
        messages.success(request, f"Erasing {count} under {release.request.reference}.")
    elif decision == "keep":
        services.hold_release_keep(release=release, actor=staff_actor(request))
        messages.info(request, f"Kept; recorded in {release.request.reference}'s audit trail.")
    else:
        return HttpResponse(status=404)
    return redirect("erasure_pages:legal-holds")
