"""The privacy team's compliance pages: memory retention policies and their runs (with a dry run and "run now"),
the CCPA report, the certificates ZIP download, and lifting a request's suppression."""

from datetime import date

from django.contrib import messages
from django.core.exceptions import ImproperlyConfigured
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from ..certificate import SIGNING_NOT_CONFIGURED
from ..certificate_export import certificates_zip_response
from ..forms import ExportForm
from ..models import ErasureRequest, RetentionPolicy, RetentionRun
from ..reports import MAX_YEAR, MIN_YEAR, ccpa_report, ccpa_report_csv
from ..retention import RetentionRunOpen, retention_policy_preview, retention_policy_run
from ..services.suppression import NoActiveSuppression, erasure_request_suppression_lift
from .staff_auth import staff_actor, staff_required

RUNS_PAGE_SIZE = 25


@staff_required
@require_POST
def suppression_lift_view(request: HttpRequest, pk: str) -> HttpResponse:
    erasure = get_object_or_404(ErasureRequest, pk=pk)
    try:
        erasure_request_suppression_lift(request=erasure, actor=staff_actor(request))
    except NoActiveSuppression as exc:
        messages.info(request, exc.message.capitalize() + ".")
    else:
        messages.success(request, "Suppression lifted: the subject's user ids may be written again.")
    return redirect("erasure_pages:request-detail", pk=erasure.pk)


@staff_required
@require_GET
def retention(request: HttpRequest) -> HttpResponse:
    policies = list(RetentionPolicy.objects.all())
    preview = None
    wanted = request.GET.get("dry_run")
    if wanted:
        policy = next((p for p in policies if str(p.id) == wanted), None)
        if policy is not None:
            # the preview names the policy by id; the page shows the policy itself
            preview = {**retention_policy_preview(policy=policy), "policy": policy}
    runs = Paginator(RetentionRun.objects.select_related("policy"), RUNS_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "erasure/staff/retention.html",
        {"policies": policies, "preview": preview, "runs": runs, "nav": "retention"},
    )


@staff_required
@require_POST
def retention_run_view(request: HttpRequest, pk: str) -> HttpResponse:
    policy = get_object_or_404(RetentionPolicy, pk=pk)
    try:
        retention_policy_run(policy=policy, trigger=RetentionRun.Trigger.MANUAL, actor=staff_actor(request))
    except RetentionRunOpen:
        messages.info(request, f"A run of “{policy.name}” is still going; it is listed below.")
    else:
        messages.success(request, f"Run of “{policy.name}” started: the workers erase what it matches.")
    return redirect("erasure_pages:retention")


def _year(value: str | None) -> int | None:
    try:
        year = int(value or "")
    except ValueError:
        return None
    return year if MIN_YEAR <= year <= MAX_YEAR else None


@staff_required
@require_GET
def reports(request: HttpRequest) -> HttpResponse:
    this_year = timezone.localdate().year
    year = _year(request.GET.get("year")) if request.GET.get("year") else this_year - 1
    if year is None:
        messages.error(request, f"The year must be a number from {MIN_YEAR} to {MAX_YEAR}.")
        year = this_year - 1
    report = ccpa_report(year=year)
    if request.GET.get("format") == "csv":
        response = HttpResponse(ccpa_report_csv(report), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="ccpa-{year}.csv"'
        return response
    return render(
        request,
        "erasure/staff/reports.html",
        {
            "report": report,
            "denied_reasons": sorted(report["denied"]["by_reason"].items()),
            "years": list(range(this_year, this_year - 5, -1)),
            "nav": "reports",
        },
    )


@staff_required
@require_GET
def certificates_download(request: HttpRequest) -> HttpResponseBase:
    form = ExportForm({"format": "csv", **request.GET.dict()})
    if not form.is_valid():
        messages.error(request, "Pick a valid period: the end date must not be before the start date.")
        return redirect("erasure_pages:exports")
    date_to: date = form.cleaned_data["to"] or timezone.localdate()
    try:
        return certificates_zip_response(
            date_from=form.cleaned_data["from"], date_to=date_to, actor=staff_actor(request)
        )
    except ImproperlyConfigured:
        messages.error(request, SIGNING_NOT_CONFIGURED)
        return redirect("erasure_pages:exports")
