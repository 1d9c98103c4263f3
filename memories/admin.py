"""Admin for the memory store: read-only views of keys, jobs, holds and memories, never memory text in lists.

Writes that matter (keys, holds, deletions) go through memories.services / memories.engine, so the admin does not
create or delete these rows itself. Memory is not registered with django-auditlog (models.py says why).
"""

from typing import ClassVar

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from .holds import legal_hold_lift
from .models import ApiKey, DeletionJob, LegalHold, Memory


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    """Only the sha256 and a short prefix are stored; create keys with `manage.py create_api_key`."""

    list_display = ["name", "key_prefix", "is_staff", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["is_staff"]
    search_fields = ["name", "key_prefix"]
    readonly_fields: ClassVar[tuple[str, ...]] = (
        "name",
        "key_prefix",
        "key_hash",
        "is_staff",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    fields = readonly_fields
    actions = ["revoke"]

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"{count} key(s) revoked.", messages.SUCCESS)


@admin.register(DeletionJob)
class DeletionJobAdmin(ReadOnlyAdmin):
    """The clear `scope` (subject ids while a job runs) is never shown; its pseudonymised form is."""

    list_display = ["id", "kind", "status", "deleted_count", "held_count", "created_at", "finished_at"]
    list_filter = ["kind", "status"]
    readonly_fields: ClassVar[tuple[str, ...]] = (
        "id",
        "kind",
        "status",
        "requested_by",
        "scope_pseudonymised",
        "deleted_count",
        "history_purged_count",
        "held_count",
        "batches",
        "passes",
        "attempts",
        "digest",
        "error",
        "created_at",
        "started_at",
        "heartbeat_at",
        "finished_at",
    )
    fields = readonly_fields


@admin.register(LegalHold)
class LegalHoldAdmin(ReadOnlyAdmin):
    """Holds are placed through the erasure workflow (memories.holds.legal_hold_place); here they can be
    inspected and lifted."""

    list_display = ["id", "reason", "placed_by", "placed_at", "memories_held", "lifted_at"]
    list_filter = ["reason"]
    readonly_fields: ClassVar[tuple[str, ...]] = (
        "id",
        "reason",
        "note",
        "scope_pseudonymised",
        "placed_by",
        "placed_at",
        "memories_held",
        "lifted_by",
        "lifted_at",
    )
    fields = readonly_fields
    actions = ["lift"]

    @admin.action(description="Lift selected holds")
    def lift(self, request: HttpRequest, queryset: QuerySet[LegalHold]) -> None:
        holds = list(queryset.filter(lifted_at__isnull=True))
        for hold in holds:
            legal_hold_lift(hold=hold, lifted_by=f"admin:{request.user.pk}")
        self.message_user(request, f"{len(holds)} hold(s) lifted.", messages.SUCCESS)


@admin.register(Memory)
class MemoryAdmin(ReadOnlyAdmin):
    """Ids, entities and flags only: neither the text nor its search vector (lexemes of the text) is shown."""

    list_display = ["id", "agent_id", "app_id", "immutable", "expiration_date", "legal_hold", "created_at"]
    list_filter = ["immutable"]
    list_select_related = ["legal_hold"]
    show_full_result_count = False
    readonly_fields: ClassVar[tuple[str, ...]] = (
        "id",
        "user_id",
        "agent_id",
        "app_id",
        "run_id",
        "categories",
        "immutable",
        "expiration_date",
        "legal_hold",
        "hash",
        "created_at",
        "updated_at",
    )
    fields = readonly_fields


from .stores import admin as _stores_admin  # noqa: E402,F401  (registers the store registry's admin)
