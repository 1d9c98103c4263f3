"""Input and output shapes of the Mem0-compatible memory API (Mem0's field names, Mem0's answers)."""

from typing import Any

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from ..filters import text_problem
from ..models import ENTITY_FIELDS, DeletionJob, Memory, MemoryHistory

MAX_BATCH = 1000
MAX_PAGE_SIZE = 200
MAX_TOP_K = 1000


class EntityIdField(serializers.CharField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(required=False, allow_null=True, max_length=255, **kwargs)


def _json_object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise serializers.ValidationError(f"{name} must be a JSON object")
    problem = text_problem(value)
    if problem:
        raise serializers.ValidationError(f"{name} {problem}")
    return value


class MemoryOutputSerializer(serializers.ModelSerializer):
    memory = serializers.CharField(source="text")

    class Meta:
        model = Memory
        fields = [
            "id",
            "memory",
            "user_id",
            "agent_id",
            "app_id",
            "run_id",
            "metadata",
            "categories",
            "immutable",
            "expiration_date",
            "created_at",
            "updated_at",
            "hash",
        ]


class MessageSerializer(serializers.Serializer):
    role = serializers.CharField(max_length=50)
    content = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=100_000)


class AddInputSerializer(serializers.Serializer):
    """POST /v3/memories/add/ and /v1/memories/. Entity ids at the top level or inside `filters` (how the v3
    client sends them); unknown Mem0 options (custom_categories, timestamp, …) are accepted and ignored."""

    messages = MessageSerializer(many=True, allow_empty=False, max_length=MAX_BATCH)  # type: ignore[call-arg]
    user_id = EntityIdField()
    agent_id = EntityIdField()
    app_id = EntityIdField()
    run_id = EntityIdField()
    filters = serializers.JSONField(required=False)
    metadata = serializers.JSONField(required=False, allow_null=True)
    categories = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, max_length=50
    )
    immutable = serializers.BooleanField(required=False, default=False)
    expiration_date = serializers.DateField(required=False, allow_null=True, input_formats=["%Y-%m-%d"])
    infer = serializers.BooleanField(required=False, default=True)

    def validate_metadata(self, value: Any) -> Any:
        return None if value is None else _json_object(value, "metadata")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        filters = attrs.pop("filters", None) or {}
        if not isinstance(filters, dict):
            raise serializers.ValidationError({"filters": "filters must be a JSON object"})
        for field in ENTITY_FIELDS:
            if attrs.get(field) in (None, "") and filters.get(field) is not None:
                value = filters[field]
                if not isinstance(value, str) or not value or len(value) > 255:
                    raise serializers.ValidationError({field: "must be a non-empty string"})
                attrs[field] = value
        if not any(attrs.get(field) for field in ENTITY_FIELDS):
            raise serializers.ValidationError(
                {"non_field_errors": "At least one of user_id, agent_id, app_id or run_id is required."}
            )
        return attrs


class AddResultSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    memory = serializers.CharField(source="text")
    event = serializers.SerializerMethodField()

    def get_event(self, obj: Memory) -> str:
        return "ADD"


class UpdateInputSerializer(serializers.Serializer):
    text = serializers.CharField(required=False, allow_blank=False, trim_whitespace=False, max_length=100_000)
    metadata = serializers.JSONField(required=False, allow_null=True)
    expiration_date = serializers.DateField(required=False, allow_null=True, input_formats=["%Y-%m-%d"])

    def validate_metadata(self, value: Any) -> Any:
        return None if value is None else _json_object(value, "metadata")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError(
                {"non_field_errors": "At least one of text, metadata or expiration_date is required."}
            )
        return attrs


class V3QueryInputSerializer(serializers.Serializer):
    """Shared by list and search: the v2 filter object plus the legacy top-level shortcuts, which are ANDed."""

    filters = serializers.JSONField(required=False)
    user_id = EntityIdField()
    agent_id = EntityIdField()
    app_id = EntityIdField()
    run_id = EntityIdField()
    categories = serializers.ListField(child=serializers.CharField(max_length=100), required=False)
    show_expired = serializers.BooleanField(required=False, default=False)

    def validate_filters(self, value: Any) -> Any:
        return _json_object(value, "filters") if value is not None else {}

    def combined_filters(self) -> dict[str, Any]:
        data = self.validated_data
        parts: list[dict[str, Any]] = []
        if data.get("filters"):
            parts.append(data["filters"])
        shortcuts: dict[str, Any] = {f: data[f] for f in ENTITY_FIELDS if data.get(f)}
        if data.get("categories"):
            shortcuts["categories"] = {"in": data["categories"]}
        for bound, op in (("start_date", "gte"), ("end_date", "lte")):
            if data.get(bound):
                shortcuts.setdefault("created_at", {})[op] = data[bound]
        if shortcuts:
            parts.append(shortcuts)
        if len(parts) == 1:
            return parts[0]
        return {"AND": parts} if parts else {}


class ListInputSerializer(V3QueryInputSerializer):
    page = serializers.IntegerField(required=False, min_value=1, max_value=1_000_000, default=1)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=MAX_PAGE_SIZE, default=100)
    start_date = serializers.CharField(required=False, max_length=40)
    end_date = serializers.CharField(required=False, max_length=40)


class SearchInputSerializer(V3QueryInputSerializer):
    query = serializers.CharField(max_length=10_000)
    top_k = serializers.IntegerField(required=False, min_value=1, max_value=MAX_TOP_K, default=10)
    threshold = serializers.FloatField(required=False, min_value=0.0, max_value=1.0, default=0.0)


class DeleteAllQuerySerializer(serializers.Serializer):
    user_id = serializers.CharField(required=False, max_length=255)
    agent_id = serializers.CharField(required=False, max_length=255)
    app_id = serializers.CharField(required=False, max_length=255)
    run_id = serializers.CharField(required=False, max_length=255)
    metadata = serializers.JSONField(required=False, binary=True)

    def validate_metadata(self, value: Any) -> Any:
        value = _json_object(value, "metadata")
        if not value:
            raise serializers.ValidationError("metadata must be a non-empty JSON object")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError(
                {
                    "non_field_errors": "At least one of user_id, agent_id, app_id, run_id or metadata is required."
                }
            )
        return attrs


class BatchDeleteItemSerializer(serializers.Serializer):
    memory_id = serializers.CharField(max_length=100)


class BatchDeleteInputSerializer(serializers.Serializer):
    memories = BatchDeleteItemSerializer(many=True, allow_empty=False)


class BatchUpdateItemSerializer(serializers.Serializer):
    memory_id = serializers.UUIDField(error_messages={"invalid": "memory_id should be a valid UUID"})
    text = serializers.CharField(required=False, allow_blank=False, trim_whitespace=False, max_length=100_000)
    metadata = serializers.JSONField(required=False, allow_null=True)

    def validate_metadata(self, value: Any) -> Any:
        return None if value is None else _json_object(value, "metadata")


class BatchUpdateInputSerializer(serializers.Serializer):
    memories = BatchUpdateItemSerializer(many=True, allow_empty=False)


class HistoryOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = MemoryHistory
        fields = ["id", "memory_id", "event", "old_memory", "new_memory", "categories", "created_at"]


@extend_schema_serializer(component_name="DeletionEvent")
class EventOutputSerializer(serializers.ModelSerializer):
    event_type = serializers.SerializerMethodField()

    class Meta:
        model = DeletionJob
        fields = [
            "id",
            "event_type",
            "kind",
            "status",
            "deleted_count",
            "held_count",
            "history_purged_count",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]

    def get_event_type(self, obj: DeletionJob) -> str:
        return "DELETE"
