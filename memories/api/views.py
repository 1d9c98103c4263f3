"""Thin views of the Mem0-compatible memory API (CONTRACT.md "Memory store API").

Reads go through memories.selectors, writes through memories.services, every delete through the one deletion
engine (memories.engine). Log lines carry ids and counts only, never text or entity ids.
"""

import logging
import uuid
from typing import Any
from urllib.parse import urlencode

from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import selectors, services
from ..engine import deletion_job_create
from ..filters import FilterError, filters_check_bounds, filters_have_entity, text_problem
from ..models import ENTITY_TYPES, ApiKey, DeletionJob, Memory
from . import errors
from .errors import error
from .serializers import (
    MAX_BATCH,
    AddInputSerializer,
    AddResultSerializer,
    BatchDeleteInputSerializer,
    BatchUpdateInputSerializer,
    DeleteAllQuerySerializer,
    EventOutputSerializer,
    HistoryOutputSerializer,
    ListInputSerializer,
    MemoryOutputSerializer,
    SearchInputSerializer,
    UpdateInputSerializer,
)
from .slots import SlotsBusy, filter_query_slot

logger = logging.getLogger(__name__)

BUSY = "Too many list and search queries are running; retry in a few seconds."
NO_ENTITY_FILTER = "At least one of user_id, agent_id, app_id or run_id is required in filters."
DELETE_IN_PROGRESS = "Delete in progress. This may take some time."

TAG = "memories (Mem0-compatible)"
ErrorSerializer = inline_serializer("MemoryApiError", {"error": serializers.CharField()})
MessageSerializer = inline_serializer("MemoryApiMessage", {"message": serializers.CharField()})
DeleteJobSerializer = inline_serializer(
    "DeleteJobStarted", {"message": serializers.CharField(), "event_id": serializers.UUIDField()}
)
ERRORS = {400: ErrorSerializer, 404: ErrorSerializer}
ADD_SCHEMA = extend_schema(
    tags=[TAG],
    request=AddInputSerializer,
    responses={
        200: inline_serializer("AddResults", {"results": AddResultSerializer(many=True)}),
        400: ErrorSerializer,
        403: ErrorSerializer,
        409: ErrorSerializer,
    },
)
DELETE_ALL_SCHEMA = extend_schema(
    tags=[TAG],
    parameters=[DeleteAllQuerySerializer],
    request=None,
    responses={200: DeleteJobSerializer, 400: ErrorSerializer},
)
PAGE_PARAMS = [
    OpenApiParameter("page", OpenApiTypes.INT, OpenApiParameter.QUERY),
    OpenApiParameter("page_size", OpenApiTypes.INT, OpenApiParameter.QUERY),
]


def _requested_by(request: Request) -> str:
    key = request.auth
    return f"api-key:{key.pk}" if isinstance(key, ApiKey) else "api"


def _parse_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return None


def _start_delete_job(request: Request, *, kind: str, scope: dict[str, Any]) -> Response:
    with transaction.atomic():
        job = deletion_job_create(kind=kind, scope=scope, requested_by=_requested_by(request))
    logger.info("deletion job created", extra={"job": str(job.id), "kind": kind})
    return Response({"message": DELETE_IN_PROGRESS, "event_id": str(job.id)})


class PingView(APIView):
    @extend_schema(
        tags=[TAG],
        responses=inline_serializer(
            "Ping",
            {
                "status": serializers.CharField(),
                "org_id": serializers.CharField(),
                "project_id": serializers.CharField(),
                "user_email": serializers.CharField(allow_null=True),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        key = request.auth
        return Response(
            {
                "status": "ok",
                "org_id": "local",
                "project_id": "default",
                "user_email": None,
                "key_name": key.name if isinstance(key, ApiKey) else None,
            }
        )


def add_memories(request: Request) -> Response:
    """POST /v3/memories/add/ (and the legacy POST /v1/memories/): each message's content is one memory."""
    serializer = AddInputSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    texts = [m["content"] for m in data["messages"] if m["content"].strip()]
    if not texts:
        return error("messages: at least one message needs non-empty content")
    try:
        memories = services.memories_add(
            texts=texts,
            user_id=data.get("user_id") or None,
            agent_id=data.get("agent_id") or None,
            app_id=data.get("app_id") or None,
            run_id=data.get("run_id") or None,
            metadata=data.get("metadata"),
            categories=data.get("categories"),
            immutable=data["immutable"],
            expiration_date=data.get("expiration_date"),
        )
    except services.MemoryWriteBlocked as exc:
        logger.info("add refused by write block", extra={"kind": exc.kind})
        return errors.write_blocked(exc.kind)
    logger.info("memories added", extra={"count": len(memories)})
    return Response({"results": AddResultSerializer(memories, many=True).data})


def delete_memories_by_filter(request: Request) -> Response:
    """DELETE /v1/memories/?user_id=…&metadata=<json>: an asynchronous engine job."""
    serializer = DeleteAllQuerySerializer(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return _start_delete_job(request, kind=DeletionJob.Kind.FILTER, scope=dict(serializer.validated_data))


class MemoryAddView(APIView):
    @ADD_SCHEMA
    def post(self, request: Request) -> Response:
        return add_memories(request)


class MemoryCollectionV1View(APIView):
    """/v1/memories/: POST is the legacy add, DELETE deletes by entity/metadata."""

    @extend_schema(operation_id="v1_memories_add_legacy")
    @ADD_SCHEMA
    def post(self, request: Request) -> Response:
        return add_memories(request)

    @DELETE_ALL_SCHEMA
    def delete(self, request: Request) -> Response:
        return delete_memories_by_filter(request)


class MemoryDetailView(APIView):
    @extend_schema(tags=[TAG], responses={200: MemoryOutputSerializer, **ERRORS})
    def get(self, request: Request, memory_id: str) -> Response:
        parsed = _parse_uuid(memory_id)
        if parsed is None:
            return error(errors.INVALID_MEMORY_ID)
        memory = selectors.memory_get(memory_id=parsed)
        if memory is None:
            return error(errors.MEMORY_NOT_FOUND, status.HTTP_404_NOT_FOUND)
        return Response(MemoryOutputSerializer(memory).data)

    @extend_schema(
        tags=[TAG],
        request=UpdateInputSerializer,
        responses={200: MemoryOutputSerializer, 403: ErrorSerializer, 409: ErrorSerializer, **ERRORS},
    )
    def put(self, request: Request, memory_id: str) -> Response:
        parsed = _parse_uuid(memory_id)
        if parsed is None:
            return error(errors.INVALID_MEMORY_ID)
        serializer = UpdateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        memory = selectors.memory_get(memory_id=parsed)
        if memory is None:
            return error(errors.MEMORY_NOT_FOUND, status.HTTP_404_NOT_FOUND)
        try:
            memory = services.memory_update(memory=memory, **serializer.validated_data)
        except services.MemoryImmutable:
            return error(errors.IMMUTABLE)
        except services.MemoryWriteBlocked as exc:
            return errors.write_blocked(exc.kind)
        except Memory.DoesNotExist:  # deleted between the read and the lock
            return error(errors.MEMORY_NOT_FOUND, status.HTTP_404_NOT_FOUND)
        return Response(MemoryOutputSerializer(memory).data)

    @extend_schema(
        tags=[TAG],
        operation_id="v1_memories_delete_one",
        responses={200: MessageSerializer, 409: ErrorSerializer, **ERRORS},
    )
    def delete(self, request: Request, memory_id: str) -> Response:
        parsed = _parse_uuid(memory_id)
        if parsed is None:
            return error(errors.INVALID_MEMORY_ID)
        outcome = services.memories_delete_by_ids(
            memory_ids=[parsed], kind=DeletionJob.Kind.SINGLE, requested_by=_requested_by(request)
        )[parsed]
        if outcome == "held":
            return error(errors.HELD, status.HTTP_409_CONFLICT)
        if outcome == "not_found":
            return error(errors.MEMORY_NOT_FOUND, status.HTTP_404_NOT_FOUND)
        return Response({"message": "Memory deleted successfully!"})


class MemoryHistoryView(APIView):
    @extend_schema(tags=[TAG], responses={200: HistoryOutputSerializer(many=True), **ERRORS})
    def get(self, request: Request, memory_id: str) -> Response:
        parsed = _parse_uuid(memory_id)
        if parsed is None:
            return error(errors.INVALID_MEMORY_ID)
        history = selectors.memory_history(memory_id=parsed)
        if history is None:
            return error(errors.MEMORY_NOT_FOUND, status.HTTP_404_NOT_FOUND)
        return Response(HistoryOutputSerializer(history, many=True).data)


def _busy() -> Response:
    response = error(BUSY, status.HTTP_503_SERVICE_UNAVAILABLE)
    response["Retry-After"] = "5"
    return response


def _checked_filters(serializer: ListInputSerializer | SearchInputSerializer) -> dict[str, Any] | Response:
    filters = serializer.combined_filters()
    try:
        filters_check_bounds(filters)  # before anything recurses over it
    except FilterError as exc:
        return error(str(exc))
    if not filters_have_entity(filters):
        return error(NO_ENTITY_FILTER)
    return filters


class MemoryListView(APIView):
    """POST /v3/memories/: filters in the body; page and page_size in the query (how the client sends them)
    or in the body."""

    @extend_schema(
        tags=[TAG],
        parameters=PAGE_PARAMS,
        request=ListInputSerializer,
        responses={
            200: inline_serializer(
                "MemoryPage",
                {
                    "count": serializers.IntegerField(),
                    "next": serializers.URLField(allow_null=True),
                    "previous": serializers.URLField(allow_null=True),
                    "results": MemoryOutputSerializer(many=True),
                },
            ),
            400: ErrorSerializer,
        },
    )
    def post(self, request: Request) -> Response:
        data = dict(request.data) if isinstance(request.data, dict) else {}
        for name in ("page", "page_size"):
            if name in request.query_params:
                data[name] = request.query_params[name]
        serializer = ListInputSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        filters = _checked_filters(serializer)
        if isinstance(filters, Response):
            return filters
        page, page_size = serializer.validated_data["page"], serializer.validated_data["page_size"]
        try:
            queryset = selectors.memories_list(
                filters=filters, show_expired=serializer.validated_data["show_expired"]
            )
            with filter_query_slot():
                count = queryset.count()
                rows = list(queryset[(page - 1) * page_size : page * page_size])
        except FilterError as exc:
            return error(str(exc))
        except SlotsBusy:
            return _busy()
        base = request.build_absolute_uri(request.path)

        def link(number: int) -> str:
            return f"{base}?{urlencode({'page': number, 'page_size': page_size})}"

        return Response(
            {
                "count": count,
                "next": link(page + 1) if page * page_size < count else None,
                "previous": link(page - 1) if page > 1 else None,
                "results": MemoryOutputSerializer(rows, many=True).data,
            }
        )


class MemorySearchView(APIView):
    @extend_schema(
        tags=[TAG],
        request=SearchInputSerializer,
        responses={
            200: inline_serializer("SearchResults", {"results": MemoryOutputSerializer(many=True)}),
            400: ErrorSerializer,
        },
    )
    def post(self, request: Request) -> Response:
        serializer = SearchInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        filters = _checked_filters(serializer)
        if isinstance(filters, Response):
            return filters
        data = serializer.validated_data
        try:
            with filter_query_slot():
                found = selectors.memories_search(
                    query=data["query"],
                    filters=filters,
                    top_k=data["top_k"],
                    threshold=data["threshold"],
                    show_expired=data["show_expired"],
                )
        except FilterError as exc:
            return error(str(exc))
        except SlotsBusy:
            return _busy()
        results = []
        for item in found:
            row = MemoryOutputSerializer(item.memory).data
            row["score"] = item.score
            results.append(row)
        return Response({"results": results})


class EventView(APIView):
    @extend_schema(tags=[TAG], responses={200: EventOutputSerializer, **ERRORS})
    def get(self, request: Request, event_id: str) -> Response:
        parsed = _parse_uuid(event_id)
        if parsed is None:
            return error("event_id should be a valid UUID")
        job = selectors.deletion_job_get(job_id=parsed)
        if job is None:
            return error("Event not found!", status.HTTP_404_NOT_FOUND)
        return Response(EventOutputSerializer(job).data)


class BatchView(APIView):
    """/v1/batch/: PUT updates up to 1000 memories (all or nothing); DELETE deletes up to 1000 through the
    engine and reports each id (deleted, held, not_found, invalid_id) — unknown ids are not an error."""

    def _items(self, request: Request, verb: str) -> list[Any] | Response:
        memories = request.data.get("memories") if isinstance(request.data, dict) else None
        if not isinstance(memories, list) or not memories:
            return error('memories: a non-empty list of {"memory_id": …} objects is required')
        if len(memories) > MAX_BATCH:
            return error(f"Maximum of {MAX_BATCH} memories can be {verb} in a single request")
        return memories

    @extend_schema(
        tags=[TAG],
        request=BatchDeleteInputSerializer,
        responses={
            200: inline_serializer(
                "BatchDeleteResult",
                {
                    "message": serializers.CharField(),
                    "deleted": serializers.IntegerField(),
                    "held": serializers.IntegerField(),
                    "not_found": serializers.IntegerField(),
                    "invalid_id": serializers.IntegerField(),
                    "results": inline_serializer(
                        "BatchDeleteOutcome",
                        {"memory_id": serializers.CharField(), "status": serializers.CharField()},
                        many=True,
                    ),
                },
            ),
            400: ErrorSerializer,
        },
    )
    def delete(self, request: Request) -> Response:
        items = self._items(request, "deleted")
        if isinstance(items, Response):
            return items
        serializer = BatchDeleteInputSerializer(data={"memories": items})
        serializer.is_valid(raise_exception=True)
        raw_ids = [item["memory_id"] for item in serializer.validated_data["memories"]]
        parsed = {raw: _parse_uuid(raw) for raw in raw_ids}
        valid = [p for p in parsed.values() if p is not None]
        outcome = (
            services.memories_delete_by_ids(
                memory_ids=valid, kind=DeletionJob.Kind.BATCH, requested_by=_requested_by(request)
            )
            if valid
            else {}
        )
        results = []
        for raw in dict.fromkeys(raw_ids):
            memory_id = parsed[raw]
            results.append(
                {"memory_id": raw, "status": outcome[memory_id] if memory_id is not None else "invalid_id"}
            )
        counts = {name: 0 for name in ("deleted", "held", "not_found", "invalid_id")}
        for row in results:
            counts[row["status"]] += 1
        logger.info("batch delete", extra=counts)
        return Response(
            {
                "message": f"Successfully deleted {counts['deleted']} memories",
                **counts,
                "results": results,
            }
        )

    @extend_schema(
        tags=[TAG],
        request=BatchUpdateInputSerializer,
        responses={200: MessageSerializer, 403: ErrorSerializer, 409: ErrorSerializer, **ERRORS},
    )
    def put(self, request: Request) -> Response:
        items = self._items(request, "updated")
        if isinstance(items, Response):
            return items
        serializer = BatchUpdateInputSerializer(data={"memories": items})
        serializer.is_valid(raise_exception=True)
        try:
            updated = services.memories_update_batch(updates=serializer.validated_data["memories"])
        except services.MemoryNotFound as exc:
            return error(errors.MEMORY_NOT_FOUND, status.HTTP_404_NOT_FOUND, memory_id=str(exc.memory_id))
        except services.MemoryImmutable:
            return error(errors.IMMUTABLE)
        except services.MemoryWriteBlocked as exc:
            return errors.write_blocked(exc.kind)
        return Response({"message": f"Successfully updated {updated} memories"})


class EntitiesView(APIView):
    @extend_schema(
        tags=[TAG],
        responses=inline_serializer(
            "Entities",
            {
                "results": inline_serializer(
                    "Entity",
                    {
                        "name": serializers.CharField(),
                        "type": serializers.CharField(),
                        "total_memories": serializers.IntegerField(),
                        "created_at": serializers.DateTimeField(),
                        "updated_at": serializers.DateTimeField(),
                    },
                    many=True,
                )
            },
        ),
    )
    def get(self, request: Request) -> Response:
        return Response({"results": selectors.entities_list()})


class EntityDeleteView(APIView):
    @extend_schema(tags=[TAG], responses={200: DeleteJobSerializer, **ERRORS})
    def delete(self, request: Request, entity_type: str, name: str) -> Response:
        if entity_type not in ENTITY_TYPES:
            return error(f"Invalid entity type: {entity_type}. Must be one of: {', '.join(ENTITY_TYPES)}")
        if not name or len(name) > 255:
            return error("name must be a non-empty string of at most 255 characters")
        problem = text_problem(name)
        if problem:
            return error(f"name {problem}")
        if not selectors.entity_exists(entity_type=entity_type, name=name):
            return error("Entity not found!", status.HTTP_404_NOT_FOUND)
        return _start_delete_job(
            request, kind=DeletionJob.Kind.ENTITY, scope={ENTITY_TYPES[entity_type]: name}
        )
