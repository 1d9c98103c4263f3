"""Routes of the compliance operations (CONTRACT.md "Compliance reports, retention and holds"), the published
signing keys and the suppression lift; included from config/urls.py."""

from django.urls import path

from . import compliance_views, wellknown

urlpatterns = [
    path(".well-known/erasure-signing-key", wellknown.signing_keys, name="signing-keys"),
    path(".well-known/erasure-signing-key.pem", wellknown.signing_keys_pem, name="signing-keys-pem"),
    path(
        "api/v1/erasure-requests/<uuid:request_id>/lift-suppression/",
        compliance_views.SuppressionLiftApi.as_view(),
        name="erasure-request-lift-suppression",
    ),
    path(
        "api/v1/retention-policies/",
        compliance_views.RetentionPolicyListCreateApi.as_view(),
        name="retention-policy-list",
    ),
    path(
        "api/v1/retention-policies/<uuid:policy_id>/run/",
        compliance_views.RetentionPolicyRunApi.as_view(),
        name="retention-policy-run",
    ),
    path(
        "api/v1/retention-policies/<uuid:policy_id>/dry-run/",
        compliance_views.RetentionPolicyDryRunApi.as_view(),
        name="retention-policy-dry-run",
    ),
    path("api/v1/retention-runs/", compliance_views.RetentionRunListApi.as_view(), name="retention-run-list"),
    path("api/v1/reports/ccpa/", compliance_views.CcpaReportApi.as_view(), name="report-ccpa"),
    path(
        "api/v1/certificates/export/",
        compliance_views.CertificateExportApi.as_view(),
        name="certificate-export",
    ),
]
