"""URL map: health, the Mem0-compatible memory API, the Erasure API, pages, admin."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import TemplateView

from .health import healthz

handler400 = "config.middleware.bad_request"

urlpatterns = [
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
    path("healthz", healthz, name="healthz"),
    path("healthz/", healthz),
    path("admin/", admin.site.urls),
    path("", include("memories.api.urls")),
    path("", include("erasure.api.urls")),
    path("", include("erasure.drp.urls")),
    path("", include("erasure.api.proof_urls")),
    path("", include("erasure.api.compliance_urls")),
    path("", include("erasure.urls_pages")),
]
