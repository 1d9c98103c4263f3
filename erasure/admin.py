"""Read-only admin views of erasure requests and the audit trail: changes go through the services (and the
privacy-team UI / Erasure API), never through admin forms that would skip the state table and the audit."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import AuditEntry, ErasureRequest


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ErasureRequest)
class ErasureRequestAdmin(ReadOnlyAdmin):
    list_display = ["reference", "regulation", "state", "channel", "received_at", "due_at"]
    list_filter = ["state", "regulation", "channel"]
    search_fields = ["reference"]  # never subject identifiers: searching them would put them in URLs and logs
    ordering = ["-received_at"]


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "actor", "action", "reference"]
    list_filter = ["action"]
    search_fields = ["reference"]
