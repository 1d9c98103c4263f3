"""Input and output shapes of the Erasure API (CONTRACT.md "Erasure API")."""

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from memories.models import LegalHold

from .. import deadlines, selectors
from ..models import STATE_TIMESTAMPS, ErasureRequest, Regulation, RejectionReason
from ..services import MAX_USER_ID_LENGTH, MAX_USER_IDS, NARROWING_KEYS


class StrictSerializer(serializers.Serializer):
    """Refuses keys it does not know (400 naming them) instead of silently ignoring a typo."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({key: ["unknown field"] for key in unknown})
        return super().to_internal_value(data)


class SubjectInput(StrictSerializer):
    user_ids = serializers.ListField(
        child=serializers.CharField(max_length=MAX_USER_ID_LENGTH, allow_blank=False),
        max_length=MAX_USER_IDS,
        required=False,
        default=list,
    )
    email = serializers.EmailField(required=False, allow_blank=True, default="")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("user_ids") and not attrs.get("email"):
            raise serializers.ValidationError({"user_ids": ["give at least one user_id, or an email"]})
        return attrs


class ScopeInput(StrictSerializer):
    agent_id = serializers.CharField(required=False, max_length=255)
    app_id = serializers.CharField(required=False, max_length=255)
    run_id = serializers.CharField(required=False, max_length=255)
    metadata = serializers.DictField(required=False, allow_empty=False)


assert set(ScopeInput().fields) == set(NARROWING_KEYS)


class CreateInput(StrictSerializer):
    regulation = serializers.ChoiceField(choices=Regulation.choices)
    subject = SubjectInput()
    scope = ScopeInput(required=False, allow_null=True)  # null: no narrowing, as when absent
    suppress = serializers.BooleanField(required=False, default=False)


class NoteInput(StrictSerializer):
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class ConfirmIdentityInput(NoteInput):
    user_ids = serializers.ListField(
        child=serializers.CharField(max_length=255, allow_blank=False),
        max_length=100,
        required=False,
        default=list,
    )


class EmptyInput(StrictSerializer):
    pass


class RejectInput(StrictSerializer):
    reason = serializers.ChoiceField(choices=RejectionReason.choices)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class ExtendInput(StrictSerializer):
    reason = serializers.CharField(max_length=2000)


class CreateOutput(serializers.ModelSerializer):
    status_url = serializers.SerializerMethodField()

    class Meta:
        model = ErasureRequest
        fields = ["id", "reference", "regulation", "state", "received_at", "due_at", "status_url"]

    def get_status_url(self, obj: ErasureRequest) -> str:
        """The subject's secret status link; returned once, only in this answer."""
        return str(self.context.get("status_url", ""))


class _DeadlineFields(serializers.ModelSerializer):
    days_left = serializers.SerializerMethodField()
    overdue = serializers.SerializerMethodField()

    def get_days_left(self, obj: ErasureRequest) -> int | None:
        return deadlines.days_left(obj)

    def get_overdue(self, obj: ErasureRequest) -> bool:
        return deadlines.is_overdue(obj)


class AssignInput(StrictSerializer):
    assignee = serializers.CharField(
        allow_null=True, max_length=150, help_text="a privacy-team member's username; null: unassigned"
    )


class ListOutput(_DeadlineFields):
    assigned_to: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = ErasureRequest
        fields = [
            "id",
            "reference",
            "regulation",
            "state",
            "channel",
            "identity_status",
            "received_at",
            "due_at",
            "days_left",
            "overdue",
            "scoped_total",
            "deleted_count",
            "assigned_to",
        ]


class TimestampsOutput(serializers.ModelSerializer):
    class Meta:
        model = ErasureRequest
        fields = list(STATE_TIMESTAMPS)


class StoreCountsOutput(serializers.Serializer):
    """One store's counts at scoping (the totals beside them add up every store)."""

    store = serializers.CharField()
    kind = serializers.CharField()
    total = serializers.IntegerField()
    by_agent = serializers.DictField(child=serializers.IntegerField())
    by_run = serializers.DictField(child=serializers.IntegerField())
    held = serializers.IntegerField()


class StoreProgressOutput(serializers.Serializer):
    store = serializers.CharField()
    kind = serializers.CharField(allow_null=True)
    status = serializers.CharField(allow_null=True)
    deleted = serializers.IntegerField()
    total = serializers.IntegerField(allow_null=True)
    held = serializers.IntegerField(allow_null=True)
    percent = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_blank=True)


class CountsOutput(serializers.ModelSerializer):
    scoped_by_agent = serializers.DictField(child=serializers.IntegerField())
    scoped_by_run = serializers.DictField(child=serializers.IntegerField())
    stores = StoreCountsOutput(source="scoped_stores", many=True, read_only=True)
    scoped_by_user = serializers.DictField(child=serializers.IntegerField())

    class Meta:
        model = ErasureRequest
        fields = [
            "scoped_total",
            "scoped_held",
            "scoped_by_agent",
            "scoped_by_run",
            "scoped_by_user",
            "deleted_count",
            "held_count",
            "history_purged_count",
            "deleted_ids_digest",
            "stores",
        ]


class SubjectOutput(serializers.Serializer):
    user_ids = serializers.ListField(child=serializers.CharField(), source="subject_user_ids")
    user_ids_confirmed = serializers.SerializerMethodField()
    email = serializers.CharField(source="subject_email")
    pseudonyms = serializers.JSONField(source="subject_pseudonyms")

    def get_user_ids_confirmed(self, obj: ErasureRequest) -> list[str]:
        from ..identity import user_id_rows

        return [row["user_id"] for row in user_id_rows(obj) if row["confirmed"]]


class ProgressOutput(serializers.Serializer):
    deleted = serializers.IntegerField()
    total = serializers.IntegerField(allow_null=True)
    held = serializers.IntegerField(allow_null=True)
    job_status = serializers.CharField(allow_null=True)
    stores = StoreProgressOutput(many=True)


class EventOutput(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    actor = serializers.CharField()
    action = serializers.CharField()

    def get_fields(self) -> dict[str, serializers.Field]:
        # Declared here because a class attribute named `data` would hide Serializer.data.
        fields = super().get_fields()
        fields["data"] = serializers.JSONField()
        return fields


class DetailOutput(_DeadlineFields):
    assigned_to: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    subject = SubjectOutput(source="*")
    timestamps = TimestampsOutput(source="*")
    counts = CountsOutput(source="*")
    progress = serializers.SerializerMethodField()
    allowed_actions = serializers.SerializerMethodField()
    events = serializers.SerializerMethodField()
    verification = serializers.JSONField()
    scope = serializers.JSONField()
    scope_pseudonymised = serializers.JSONField()

    class Meta:
        model = ErasureRequest
        fields = [
            "id",
            "reference",
            "regulation",
            "state",
            "channel",
            "created_by",
            "subject",
            "scope",
            "scope_pseudonymised",
            "suppress",
            "identity_status",
            "identity_verified_by",
            "identity_note",
            "timestamps",
            "counts",
            "progress",
            "due_at",
            "acknowledge_due_at",
            "days_left",
            "overdue",
            "extension_reason",
            "rejection_reason",
            "rejection_note",
            "failure_reason",
            "approved_by",
            "scoped_by",  # console: four-eyes approval
            "assigned_to",
            "deletion_job",
            "verification",
            "allowed_actions",
            "events",
        ]

    @extend_schema_field(ProgressOutput)
    def get_progress(self, obj: ErasureRequest) -> dict[str, Any]:
        return selectors.progress(obj)

    def get_allowed_actions(self, obj: ErasureRequest) -> list[str]:
        return selectors.allowed_actions(obj)

    @extend_schema_field(EventOutput(many=True))
    def get_events(self, obj: ErasureRequest) -> list[dict[str, Any]]:
        return list(EventOutput(selectors.erasure_request_events(request=obj), many=True).data)


class ConflictOutput(serializers.Serializer):
    error = serializers.CharField()
    state = serializers.CharField()
    allowed_actions = serializers.ListField(child=serializers.CharField())


class LegalHoldInput(StrictSerializer):
    scope = serializers.JSONField()
    reason = serializers.ChoiceField(choices=LegalHold.Reason.choices)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class LegalHoldOutput(serializers.ModelSerializer):
    active = serializers.BooleanField(source="is_active")
    scope_pseudonymised = serializers.JSONField()

    class Meta:
        model = LegalHold
        fields = [
            "id",
            "reason",
            "note",
            "scope_pseudonymised",
            "memories_held",
            "placed_by",
            "placed_at",
            "lifted_by",
            "lifted_at",
            "active",
        ]
