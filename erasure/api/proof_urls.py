"""Routes of the proof endpoints (certificate, compliance export); included from config/urls.py."""

from django.urls import path

from . import proof_views

urlpatterns = [
    path(
        "api/v1/erasure-requests/<uuid:request_id>/certificate/",
        proof_views.CertificateApi.as_view(),
        name="erasure-request-certificate",
    ),
    path(
        "api/v1/erasure-requests/<uuid:request_id>/certificate/supplements/<int:number>/",
        proof_views.CertificateSupplementApi.as_view(),
        name="erasure-request-certificate-supplement",
    ),
    path("api/v1/audit/export/", proof_views.AuditExportApi.as_view(), name="audit-export"),
]
