"""Proof endpoints of the Erasure API: the deletion certificate (JSON or PDF) and the compliance export (CSV or JSON).

Both read `?format=` themselves: DRF would otherwise treat it as a renderer override (URL_FORMAT_OVERRIDE) and
answer 404 for `pdf` or `csv`, so these views use a negotiation class that ignores it.
"""

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from memories.auth import IsStaffKey

from ..certificate import SIGNING_NOT_CONFIGURED, CertificateNotAvailable, certificate_issue
from ..certificate_supplement import supplement_download
from ..export import audit_export
from ..models import ErasureRequest
from ..selectors import allowed_actions
from ..views.downloads import download_response
from .serializers import ConflictOutput
from .views import actor_of


class IgnoreFormatParam(DefaultContentNegotiation):
    """JSON answers always; `format` is the view's own parameter here, not a renderer override."""

    def select_renderer(self, request: Any, renderers: Any, format_suffix: Any = None) -> Any:
        renderer = renderers[0]
        return renderer, renderer.media_type


class ProofApi(APIView):
    permission_classes = [IsStaffKey]
    content_negotiation_class = IgnoreFormatParam


class CertificateApi(ProofApi):
    class InputSerializer(serializers.Serializer):
        format = serializers.ChoiceField(choices=["json", "pdf"], default="json", required=False)

    @extend_schema(
        operation_id="erasure_request_certificate",
        summary="The signed proof of deletion (JSON, or ?format=pdf)",
        parameters=[
            OpenApiParameter("format", str, enum=["json", "pdf"], description="json (default) or pdf")
        ],
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description='{"certificate": {...}, "signature": base64 Ed25519, "public_key": PEM, "key_id"}; '
                "application/pdf with ?format=pdf",
            ),
            400: OpenApiResponse(description="Bad format: the body names the field"),
            404: OpenApiResponse(description="No such request"),
            409: OpenApiResponse(ConflictOutput, description="Not verified yet: the current state"),
            503: OpenApiResponse(description="No signing key is configured on this server"),
        },
    )
    def get(self, request: Request, request_id: Any) -> Any:
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        erasure_request = get_object_or_404(ErasureRequest, id=request_id)
        try:
            download = certificate_issue(
                request=erasure_request, actor=actor_of(request), fmt=params.validated_data["format"]
            )
        except CertificateNotAvailable as exc:
            body = {
                "error": str(exc),
                "state": exc.state,
                "allowed_actions": allowed_actions(erasure_request),
            }
            return Response(body, status=status.HTTP_409_CONFLICT)
        except ImproperlyConfigured:
            return Response({"error": SIGNING_NOT_CONFIGURED}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return download_response(download)


class CertificateSupplementApi(ProofApi):
    @extend_schema(
        operation_id="erasure_request_certificate_supplement",
        summary="A signed supplement to the certificate: memories a lifted legal hold released, erased later",
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description='{"certificate": {"type": "erasure-certificate-supplement", ...}, "signature", '
                '"public_key", "key_id"}; verifiable offline like the certificate',
            ),
            404: OpenApiResponse(description="No such request or supplement"),
        },
    )
    def get(self, request: Request, request_id: Any, number: int) -> Any:
        erasure_request = get_object_or_404(ErasureRequest, id=request_id)
        download = supplement_download(request=erasure_request, number=number, actor=actor_of(request))
        if download is None:
            return Response({"number": f"no supplement {number} for this request"}, status=404)
        return download_response(download)


class AuditExportApi(ProofApi):
    class InputSerializer(serializers.Serializer):
        format = serializers.ChoiceField(choices=["csv", "json"], default="json", required=False)
        # `from` is a Python keyword, hence the source mapping.
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
        operation_id="audit_export",
        summary="Compliance export: requests (pseudonyms and counts only) and their audit trail in a date range",
        parameters=[
            OpenApiParameter("format", str, enum=["csv", "json"], description="json (default) or csv"),
            OpenApiParameter("from", OpenApiTypes.DATE, description="first day (UTC), YYYY-MM-DD"),
            OpenApiParameter("to", OpenApiTypes.DATE, description="last day (UTC, inclusive), YYYY-MM-DD"),
        ],
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="JSON {export, requests, audit_entries}, or text/csv with a `record` column "
                "(request | audit_entry); streamed",
            ),
            400: OpenApiResponse(description="Bad date or format: the body names the field"),
        },
    )
    def get(self, request: Request) -> Any:
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        download = audit_export(
            fmt=params.validated_data["format"],
            date_from=params.validated_data.get("from"),
            date_to=params.validated_data.get("to"),
            actor=actor_of(request),
        )
        return download_response(download)
