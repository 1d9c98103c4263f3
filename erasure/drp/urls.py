"""DRP routes exactly as the specification names them, each with and without a trailing slash."""

from django.urls import re_path

from . import api, views

urlpatterns = [
    re_path(r"^v1/agent/(?P<agent_id>[^/]+)/?$", views.agent, name="drp-agent"),
    re_path(r"^v1/data-rights-request/?$", views.exercise, name="drp-exercise"),
    re_path(
        r"^v1/data-rights-request/(?P<request_id>[^/]+)/?$", views.data_rights_request, name="drp-request"
    ),
    re_path(r"^api/v1/drp/agents/?$", api.DrpAgentListCreateApi.as_view(), name="drp-agent-list"),
]
