"""URL map: health, the Mem0-compatible memory API, the Erasure API, pages, admin."""

from django.contrib import admin
from django.urls import include, path

from .health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("healthz/", healthz),
    path("admin/", admin.site.urls),
    path("", include("memories.api.urls")),
    path("", include("erasure.api.urls")),
    path("", include("erasure.api.proof_urls")),
    path("", include("erasure.urls_pages")),
]
