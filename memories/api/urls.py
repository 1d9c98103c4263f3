"""Routes of the Mem0-compatible memory API (CONTRACT.md "Memory store API"), with Mem0's trailing slashes."""

from django.urls import path

from . import views

urlpatterns = [
    path("v1/ping/", views.PingView.as_view(), name="mem0-ping"),
    path("v3/memories/add/", views.MemoryAddView.as_view(), name="mem0-add"),
    path("v3/memories/search/", views.MemorySearchView.as_view(), name="mem0-search"),
    path("v3/memories/", views.MemoryListView.as_view(), name="mem0-list"),
    path("v1/memories/", views.MemoryCollectionV1View.as_view(), name="mem0-memories-v1"),
    path("v1/memories/<str:memory_id>/history/", views.MemoryHistoryView.as_view(), name="mem0-history"),
    path("v1/memories/<str:memory_id>/", views.MemoryDetailView.as_view(), name="mem0-memory"),
    path("v1/event/<str:event_id>/", views.EventView.as_view(), name="mem0-event"),
    path("v1/batch/", views.BatchView.as_view(), name="mem0-batch"),
    path("v1/entities/", views.EntitiesView.as_view(), name="mem0-entities"),
    path("v2/entities/<str:entity_type>/<path:name>/", views.EntityDeleteView.as_view(), name="mem0-entity"),
]
