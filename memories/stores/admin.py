"""Admin views of the store registry and the connected stores' jobs: read-only (stores are added and changed in
the privacy-team console or the API, which validate and audit), and never a secret, not even encrypted."""

from typing import ClassVar

from django.contrib import admin
from django.http import HttpRequest

from .models import Store, StoreJob


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Store)
class StoreAdmin(_ReadOnly):
    list_display = ["name", "kind", "enabled", "has_secrets", "last_check_ok", "last_check_at"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name"]
    exclude = ["secrets_encrypted"]
    readonly_fields: ClassVar[tuple[str, ...]] = (
        "name", "kind", "config", "enabled", "has_secrets", "last_check_ok", "last_check_detail",
        "last_check_at", "created_at", "updated_at",
    )  # fmt: skip

    @admin.display(boolean=True, description="secrets set")
    def has_secrets(self, obj: Store) -> bool:
        return obj.has_secrets


@admin.register(StoreJob)
class StoreJobAdmin(_ReadOnly):
    list_display = [
        "id",
        "store",
        "requested_by",
        "status",
        "deleted_count",
        "held_count",
        "attempts",
        "created_at",
    ]
    list_filter = ["status", "store"]
    search_fields = ["requested_by"]
    exclude = ["scope", "state"]  # the clear scope of an open job holds the subject's ids
    readonly_fields: ClassVar[tuple[str, ...]] = (
        "store", "requested_by", "status", "scope_pseudonymised", "scoped_total", "deleted_count", "held_count",
        "history_rows_purged", "entity_rows_purged", "messages_purged", "digest", "verification", "attempts",
        "error", "created_at", "started_at", "heartbeat_at", "finished_at",
    )  # fmt: skip
