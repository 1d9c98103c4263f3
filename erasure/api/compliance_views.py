"""Thin views of the compliance operations (CONTRACT.md "Compliance reports, retention and holds"): retention
policies and runs, the CCPA report, certificates in bulk, and lifting a suppression. Staff API keys only."""

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from ..certificate import SIGNING_NOT_CONFIGURED
from ..certificate_export import certificates_zip_response
from ..models import ErasureRequest, RetentionPolicy, RetentionRun
from ..reports import MAX_YEAR, MIN_YEAR, ccpa_report, ccpa_report_csv
from ..retention import (
    RetentionRunOpen,
    retention_policy_create,
    retention_policy_preview,
    retention_policy_run,
)
from ..services.suppression import NoActiveSuppression, erasure_request_suppression_lift
from .proof_views import ProofApi
from .views import BAD_INPUT, StaffApi, actor_of


class RetentionPolicyOutput(serializers.ModelSerializer):
    class Meta:
        model = RetentionPolicy
        fields = ["id", "name", "scope", "max_age_days", "enabled", "created_by", "created_at"]


class RetentionRunOutput(serializers.ModelSerializer):
    policy_name = serializers.CharField(source="policy.name")
    deleted = serializers.IntegerField(source="deleted_count")
    held = serializers.IntegerField(source="held_count")
    history_purged = serializers.IntegerField(source="history_purged_count")
    started = serializers.DateTimeField(source="started_at")
    finished = serializers.DateTimeField(source="finished_at")

    class Meta:
        model = RetentionRun
        fields = [
            "id", "policy", "policy_name", "trigger", "requested_by", "status", "cutoff", "deletion_job",
            "started", "finished", "deleted", "held", "history_purged", "digest", "error",
        ]  # fmt: skip


class StartedCursorPagination(CursorPagination):
    ordering = "-started_at"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class RetentionPolicyInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scope = serializers.JSONField(required=False, default=dict)
    max_age_days = serializers.IntegerField(min_value=1)
    enabled = serializers.BooleanField(required=False, default=True)


class SuppressionLiftInput(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class RetentionPolicyListCreateApi(StaffApi):
    @extend_schema(
        operation_id="retention_policy_list",
        summary="Memory retention policies",
        responses={200: RetentionPolicyOutput(many=True)},
    )
    def get(self, request: Request) -> Response:
        return Response(RetentionPolicyOutput(RetentionPolicy.objects.all(), many=True).data)

    @extend_schema(
        operation_id="retention_policy_create",
        summary="Registers a retention policy: memories in `scope` older than `max_age_days` are erased on schedule",
        request=RetentionPolicyInput,
        responses={201: RetentionPolicyOutput, 400: BAD_INPUT},
    )
    def post(self, request: Request) -> Response:
        data = RetentionPolicyInput(data=request.data)
        data.is_valid(raise_exception=True)
        policy = retention_policy_create(**data.validated_data, actor=actor_of(request))
        return Response(RetentionPolicyOutput(policy).data, status=status.HTTP_201_CREATED)


class RetentionPolicyRunApi(StaffApi):
    @extend_schema(
        operation_id="retention_policy_run",
        summary="Runs a policy now through the deletion engine (202 with the run)",
        request=None,
        responses={
            202: RetentionRunOutput,
            404: OpenApiResponse(description="No such policy"),
            409: OpenApiResponse(description="A run of this policy is still going: its id"),
        },
    )
    def post(self, request: Request, policy_id: Any) -> Response:
        policy = get_object_or_404(RetentionPolicy, id=policy_id)
        try:
            run = retention_policy_run(
                policy=policy, trigger=RetentionRun.Trigger.MANUAL, actor=actor_of(request)
            )
        except RetentionRunOpen as exc:
            return Response({"error": str(exc), "run": str(exc.run.id)}, status=status.HTTP_409_CONFLICT)
        return Response(RetentionRunOutput(run).data, status=status.HTTP_202_ACCEPTED)


class RetentionPolicyDryRunApi(StaffApi):
    @extend_schema(
        operation_id="retention_policy_dry_run",
        summary="What a run of the policy now would erase (and keep under legal hold); changes nothing",
        responses={200: OpenApiTypes.OBJECT, 404: OpenApiResponse(description="No such policy")},
    )
    def get(self, request: Request, policy_id: Any) -> Response:
        policy = get_object_or_404(RetentionPolicy, id=policy_id)
        return Response(retention_policy_preview(policy=policy))


class RetentionRunListApi(StaffApi):
    @extend_schema(
        operation_id="retention_run_list",
        summary="Runs of the retention policies, newest first (?policy=<id> for one policy)",
        parameters=[OpenApiParameter("policy", OpenApiTypes.UUID, description="only this policy's runs")],
        responses={200: RetentionRunOutput(many=True)},
    )
    def get(self, request: Request) -> Response:
        runs = RetentionRun.objects.select_related("policy")
        policy = request.query_params.get("policy")
        if policy:
            field = serializers.UUIDField()
            try:
                runs = runs.filter(policy_id=field.to_internal_value(policy))
            except serializers.ValidationError:
                return Response(
                    {"policy": ["must be a policy id (UUID)"]}, status=status.HTTP_400_BAD_REQUEST
                )
        paginator = StartedCursorPagination()
        page = paginator.paginate_queryset(runs, request, view=self)
        return paginator.get_paginated_response(RetentionRunOutput(page, many=True).data)


class CcpaReportApi(ProofApi):
    class InputSerializer(serializers.Serializer):
        year = serializers.IntegerField(min_value=MIN_YEAR, max_value=MAX_YEAR)
        format = serializers.ChoiceField(choices=["json", "csv"], default="json", required=False)

    @extend_schema(
        operation_id="report_ccpa",
        summary="CCPA §7102(a) metrics of the deletion requests received in a calendar year (UTC)",
        parameters=[
            OpenApiParameter("year", int, required=True, description="the calendar year, e.g. 2026"),
            OpenApiParameter("format", str, enum=["json", "csv"], description="json (default) or csv"),
        ],
        responses={200: OpenApiTypes.OBJECT, 400: BAD_INPUT},
    )
    def get(self, request: Request) -> Any:
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        report = ccpa_report(year=params.validated_data["year"])
        if params.validated_data["format"] == "csv":
            response = HttpResponse(ccpa_report_csv(report), content_type="text/csv")
            response["Content-Disposition"] = f'attachment; filename="ccpa-{report["year"]}.csv"'
            return response
        return Response(report)


class CertificateExportApi(ProofApi):
    class InputSerializer(serializers.Serializer):
        from_ = serializers.DateField(required=False, input_formats=["%Y-%m-%d"])
        to = serializers.DateField(required=False, input_formats=["%Y-%m-%d"])

        def get_fields(self) -> dict[str, serializers.Field]:
            fields = super().get_fields()
            fields["from"] = fields.pop("from_")
            return fields

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            start, end = attrs.get("from"), attrs.get("to")
            if start and end and start > end:
                raise serializers.ValidationError({"to": ["must not be before 'from'"]})
            return attrs

    @extend_schema(
        operation_id="certificate_export",
        summary="A ZIP of the signed JSON and PDF certificates of requests verified in a date range (streamed)",
        parameters=[
            OpenApiParameter("from", OpenApiTypes.DATE, description="first day (UTC), YYYY-MM-DD"),
            OpenApiParameter("to", OpenApiTypes.DATE, description="last day (UTC, inclusive), YYYY-MM-DD"),
        ],
        responses={
            200: OpenApiResponse(OpenApiTypes.BINARY, description="application/zip"),
            400: BAD_INPUT,
            503: OpenApiResponse(description="No signing key is configured on this server"),
        },
    )
    def get(self, request: Request) -> Any:
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        try:
            return certificates_zip_response(
                date_from=params.validated_data.get("from"),
                date_to=params.validated_data.get("to") or timezone.localdate(),
                actor=actor_of(request),
            )
        except ImproperlyConfigured:
            return Response({"error": SIGNING_NOT_CONFIGURED}, status=status.HTTP_503_SERVICE_UNAVAILABLE)


class SuppressionLiftApi(StaffApi):
    @extend_schema(
        operation_id="erasure_request_lift_suppression",
        summary="Lifts the suppression a verified request placed: its user ids may be written again (audited)",
        request=SuppressionLiftInput,
        responses={
            200: OpenApiTypes.OBJECT,
            404: OpenApiResponse(description="No such request"),
            409: OpenApiResponse(description="The request holds no active suppression"),
        },
    )
    def post(self, request: Request, request_id: Any) -> Response:
        data = SuppressionLiftInput(data=request.data)
        data.is_valid(raise_exception=True)
        erasure = get_object_or_404(ErasureRequest, id=request_id)
        try:
            lifted = erasure_request_suppression_lift(
                request=erasure, actor=actor_of(request), note=data.validated_data["note"]
            )
        except NoActiveSuppression as exc:
            return Response({"error": exc.message, "suppressed": False}, status=status.HTTP_409_CONFLICT)
        return Response({"reference": erasure.reference, "suppressed": False, "blocks_lifted": lifted})
