"""Console pages about data subjects and their agents: the request detail's identity, notices and alerts
(subject_context), the mail & alerts page (what could not be sent is never hidden), and the DRP agent registry."""

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ..drp.crypto import verify_key_valid
from ..drp.models import DrpAgent, DrpCallback, DrpRequest
from ..drp.services import DrpInputError, drp_agent_register
from ..identity import user_id_rows
from ..models import ErasureRequest
from ..notices import erasure_request_acknowledge, privacy_team_emails
from ..notices_models import DeliveryStatus, StaffAlert, SubjectNotice
from ..selectors import OPEN_STATES
from .staff_auth import staff_actor, staff_required

RECENT = 50


def subject_context(erasure: ErasureRequest) -> dict[str, Any]:
    return {
        "user_id_rows": user_id_rows(erasure),
        "notices": list(erasure.notices.order_by("created_at", "id")),
        "alerts": list(erasure.staff_alerts.order_by("created_at", "id")),
        "drp": DrpRequest.objects.select_related("agent").filter(erasure=erasure).first(),
        "open_states": sorted(OPEN_STATES),
    }


@staff_required
@require_POST
def request_acknowledge(request: HttpRequest, pk: str) -> HttpResponse:
    erasure = get_object_or_404(ErasureRequest, pk=pk)
    if erasure_request_acknowledge(request=erasure, actor=staff_actor(request)):
        messages.success(request, "Acknowledgement recorded.")
    else:
        messages.error(request, f"{erasure.reference} was already acknowledged.")
    return redirect("erasure_pages:request-detail", pk=erasure.pk)


@staff_required
@require_GET
def staff_mail(request: HttpRequest) -> HttpResponse:
    unsent = [DeliveryStatus.FAILED, DeliveryStatus.PENDING, DeliveryStatus.UNADDRESSED]
    context = {
        "recipients": privacy_team_emails(),
        "notices_unsent": SubjectNotice.objects.filter(status__in=unsent).select_related("request")[:RECENT],
        "alerts_unsent": StaffAlert.objects.filter(status__in=unsent).select_related("request")[:RECENT],
        "alerts_recent": StaffAlert.objects.select_related("request")[:RECENT],
        "callbacks_unsent": DrpCallback.objects.filter(
            status__in=[DrpCallback.Status.PENDING, DrpCallback.Status.FAILED]
        ).select_related("drp_request__agent")[:RECENT],
        "nav": "mail",
    }
    return render(request, "erasure/staff/mail.html", context)


class DrpAgentForm(forms.Form):
    agent_id = forms.CharField(label="Agent id", max_length=100)
    name = forms.CharField(label="Name", max_length=200)
    verify_key = forms.CharField(label="Verify key (base64 Ed25519)", max_length=64)
    trusted = forms.BooleanField(
        label="Trusted: its email_verified: true counts as proof of the subject's identity", required=False
    )

    def clean_verify_key(self) -> str:
        value = self.cleaned_data["verify_key"].strip()
        if not verify_key_valid(value):
            raise forms.ValidationError("Enter the agent's base64-encoded 32-byte Ed25519 verify key.")
        return value


@staff_required
@require_http_methods(["GET", "POST"])
def drp_agents(request: HttpRequest) -> HttpResponse:
    form = DrpAgentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            agent = drp_agent_register(**form.cleaned_data, actor=staff_actor(request))
        except DrpInputError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, f"Agent {agent.agent_id} registered.")
            return redirect("erasure_pages:drp-agents")
    status = 400 if request.method == "POST" else 200
    context = {"form": form, "agents": DrpAgent.objects.all(), "nav": "drp"}
    return render(request, "erasure/staff/drp_agents.html", context, status=status)
