"""URLs of the web pages (CONTRACT.md "Web pages"): the subject's form and status page, the privacy team's console."""

from django.contrib.auth import views as auth_views
from django.urls import path

from . import views
from .views import staff_compliance, staff_subjects, subject_identity

app_name = "erasure_pages"

urlpatterns = [
    path("privacy/request/", views.subject_request, name="subject-request"),
    path("privacy/request/sent/", views.subject_submitted, name="subject-submitted"),
    path("privacy/status/<str:reference>/", views.subject_status, name="subject-status"),
    path(
        "privacy/status/<str:reference>/resend/", subject_identity.verify_resend, name="subject-verify-resend"
    ),
    path("privacy/verify/", subject_identity.verify_code, name="subject-verify-code"),
    path("privacy/verify/drp/<str:request_id>/", subject_identity.verify_drp, name="subject-verify-drp"),
    path("privacy/verify/<str:token>/", subject_identity.verify_link, name="subject-verify-link"),
    path("privacy-team/login/", views.StaffLoginView.as_view(), name="login"),
    path(
        "privacy-team/logout/", auth_views.LogoutView.as_view(next_page="erasure_pages:login"), name="logout"
    ),
    path("privacy-team/", views.queue, name="queue"),
    path("privacy-team/requests/new/", views.request_new, name="request-new"),
    path("privacy-team/requests/<uuid:pk>/", views.request_detail, name="request-detail"),
    path("privacy-team/requests/<uuid:pk>/progress.json", views.request_progress, name="request-progress"),
    path(
        "privacy-team/requests/<uuid:pk>/certificate/", views.request_certificate, name="request-certificate"
    ),
    path(
        "privacy-team/requests/<uuid:pk>/certificate/supplements/<int:number>/",
        views.request_certificate_supplement,
        name="request-certificate-supplement",
    ),
    path(
        "privacy-team/requests/<uuid:pk>/lift-suppression/",
        staff_compliance.suppression_lift_view,
        name="request-lift-suppression",
    ),
    path("privacy-team/dashboard/", views.dashboard, name="dashboard"),
    path("privacy-team/requests/bulk/", views.bulk_action, name="bulk-action"),
    path("privacy-team/requests/<uuid:pk>/assign/", views.request_assign, name="request-assign"),
    path(
        "privacy-team/requests/<uuid:pk>/acknowledge/",
        staff_subjects.request_acknowledge,
        name="request-acknowledge",
    ),
    path("privacy-team/requests/<uuid:pk>/<slug:action>/", views.request_action, name="request-action"),
    path("privacy-team/holds/", views.legal_holds, name="legal-holds"),
    path("privacy-team/holds/<uuid:pk>/lift/", views.legal_hold_lift_view, name="legal-hold-lift"),
    path(
        "privacy-team/holds/releases/<uuid:pk>/<slug:decision>/",
        views.hold_release_decide,
        name="hold-release-decide",
    ),
    path("privacy-team/stores/", views.stores, name="stores"),
    path("privacy-team/stores/<uuid:pk>/", views.store_edit, name="store-edit"),
    path("privacy-team/stores/<uuid:pk>/test/", views.store_test_view, name="store-test"),
    path("privacy-team/stores/<uuid:pk>/disable/", views.store_disable_view, name="store-disable"),
    path("privacy-team/retention/", staff_compliance.retention, name="retention"),
    path("privacy-team/retention/<uuid:pk>/run/", staff_compliance.retention_run_view, name="retention-run"),
    path("privacy-team/reports/", staff_compliance.reports, name="reports"),
    path(
        "privacy-team/exports/certificates/",
        staff_compliance.certificates_download,
        name="certificates-download",
    ),
    path("privacy-team/exports/", views.exports, name="exports"),
    path("privacy-team/mail/", staff_subjects.staff_mail, name="staff-mail"),
    path("privacy-team/drp-agents/", staff_subjects.drp_agents, name="drp-agents"),
    path("privacy-team/exports/download/", views.export_download, name="export-download"),
]
