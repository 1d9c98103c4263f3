"""The privacy team's stores page: the built-in store and the connected Mem0 stores, add, edit, disable, and
"test connection" with its last result and time. Secrets are never shown, not even in an edit form."""

import json

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from memories.models import Store, StoreJob

from ..services import stores as workflow
from ..services.errors import ErasureInputError
from ..services.store_registry import StoreBusy, store_create, store_disable, store_test, store_update
from ..store_forms import StoreForm
from .staff_auth import staff_actor, staff_required


def _form_error(form: StoreForm, exc: ErasureInputError) -> None:
    top = exc.field.split(".")[0].split("[")[0]
    form.add_error(top if top in form.fields else None, f"{exc.field}: {exc.message}")


def _rows() -> list[dict[str, object]]:
    workflow.builtin_store()
    running = set(
        StoreJob.objects.filter(status__in=StoreJob.OPEN).values_list("store_id", flat=True).distinct()
    )
    return [{"store": s, "running": s.id in running} for s in Store.objects.order_by("created_at", "name")]


@staff_required
@require_http_methods(["GET", "POST"])
def stores(request: HttpRequest) -> HttpResponse:
    form = StoreForm(request.POST or None, prefix="add")
    if request.method == "POST" and form.is_valid():
        try:
            store = store_create(
                name=form.cleaned_data["name"],
                kind=form.cleaned_data["kind"],
                config=form.cleaned_data["config"],
                secrets=form.cleaned_data["secrets"],
                enabled=form.cleaned_data["enabled"],
                actor=staff_actor(request),
            )
        except ErasureInputError as exc:
            _form_error(form, exc)
        else:
            messages.success(
                request, f"Store {store.name} added. Test its connection before the next erasure."
            )
            return redirect("erasure_pages:stores")
    status = 400 if request.method == "POST" else 200
    return render(
        request, "erasure/staff/stores.html", {"rows": _rows(), "form": form, "nav": "stores"}, status=status
    )


@staff_required
@require_http_methods(["GET", "POST"])
def store_edit(request: HttpRequest, pk: str) -> HttpResponse:
    store = get_object_or_404(Store, pk=pk)
    if store.is_builtin:
        messages.info(request, "The built-in store has nothing to configure.")
        return redirect("erasure_pages:stores")
    initial = {"name": store.name, "config": json.dumps(store.config, indent=2), "enabled": store.enabled}
    form = StoreForm(request.POST or None, initial=initial, editing=True, prefix="edit")
    if request.method == "POST" and form.is_valid():
        changes = {
            "name": form.cleaned_data["name"],
            "config": form.cleaned_data["config"],
            "enabled": form.cleaned_data["enabled"],
        }
        if form.cleaned_data["secrets"] is not None:
            changes["secrets"] = form.cleaned_data["secrets"]
        try:
            store = store_update(store=store, actor=staff_actor(request), **changes)
        except ErasureInputError as exc:
            _form_error(form, exc)
        except StoreBusy as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Store {store.name} saved.")
            return redirect("erasure_pages:stores")
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "erasure/staff/store_edit.html",
        {"store": store, "form": form, "nav": "stores"},
        status=status,
    )


@staff_required
@require_POST
def store_test_view(request: HttpRequest, pk: str) -> HttpResponse:
    store = get_object_or_404(Store, pk=pk)
    ok, detail = store_test(store=store, actor=staff_actor(request))
    (messages.success if ok else messages.error)(
        request, f"Store {store.name}: {'connected' if ok else 'connection failed'} — {detail}"
    )
    return redirect("erasure_pages:stores")


@staff_required
@require_POST
def store_disable_view(request: HttpRequest, pk: str) -> HttpResponse:
    store = get_object_or_404(Store, pk=pk)
    try:
        store_disable(store=store, actor=staff_actor(request))
    except StoreBusy as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Store {store.name} disabled: erasures no longer reach it.")
    return redirect("erasure_pages:stores")
