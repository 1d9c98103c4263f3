"""The privacy team's audit export page: pick a period and a format, download the signed export."""

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.views.decorators.http import require_GET

from ..export import audit_export
from ..forms import ExportForm
from .downloads import download_response
from .staff_auth import staff_actor, staff_required


@staff_required
@require_GET
def exports(request: HttpRequest) -> HttpResponse:
    form = ExportForm(initial={"format": "csv"})
    return render(
        request,
        "erasure/staff/exports.html",
        {"form": form, "nav": "exports"},
    )


@staff_required
@require_GET
def export_download(request: HttpRequest) -> HttpResponseBase:
    form = ExportForm(request.GET)
    if not form.is_valid():
        return render(request, "erasure/staff/exports.html", {"form": form, "nav": "exports"}, status=400)
    download = audit_export(
        fmt=form.cleaned_data["format"],
        date_from=form.cleaned_data["from"],
        date_to=form.cleaned_data["to"],
        actor=staff_actor(request),
        via="privacy-team UI",
    )
    return download_response(download)
