"""Routes of the Erasure API (CONTRACT.md "Erasure API"), its OpenAPI schema and the browsable docs page."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from . import stores, views

urlpatterns = [
    path(
        "api/v1/erasure-requests/", views.ErasureRequestListCreateApi.as_view(), name="erasure-request-list"
    ),
    path(
        "api/v1/erasure-requests/<uuid:request_id>/",
        views.ErasureRequestDetailApi.as_view(),
        name="erasure-request-detail",
    ),
    path(
        "api/v1/erasure-requests/<uuid:request_id>/assign/",
        views.ErasureRequestAssignApi.as_view(),
        name="erasure-request-assign",
    ),
    path("api/v1/legal-holds/", views.LegalHoldListCreateApi.as_view(), name="legal-hold-list"),
    path("api/v1/legal-holds/<uuid:hold_id>/lift/", views.LegalHoldLiftApi.as_view(), name="legal-hold-lift"),
    path("api/v1/stores/", stores.StoreListCreateApi.as_view(), name="store-list"),
    path("api/v1/stores/<uuid:store_id>/", stores.StoreDetailApi.as_view(), name="store-detail"),
    path("api/v1/stores/<uuid:store_id>/test/", stores.StoreTestApi.as_view(), name="store-test"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
]

urlpatterns += [
    path(
        f"api/v1/erasure-requests/<uuid:request_id>/{action}/",
        views.action_api(action).as_view(),
        name=f"erasure-request-{action}",
    )
    for action in views.ACTIONS
]
