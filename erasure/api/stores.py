"""The store registry's API (CONTRACT.md "Connected memory stores"): list, add, change, disable, test.

`secrets` is accepted on input and never part of an answer (only `has_secrets`).
"""

from typing import Any

from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from memories.models import Store

from ..services import stores as workflow
from ..services.store_registry import StoreBusy, store_create, store_disable, store_test, store_update
from .serializers import StrictSerializer
from .views import BAD_INPUT, StaffApi, actor_of

NOT_FOUND = OpenApiResponse(description="Not found")
BUSY = OpenApiResponse(description="The store has an erasure in progress, or is the built-in store")


class StoreInput(StrictSerializer):
    name = serializers.CharField(max_length=64)
    kind = serializers.ChoiceField(choices=[Store.Kind.MEM0_OSS, Store.Kind.MEM0_PLATFORM])
    config = serializers.JSONField(required=False, default=dict)
    secrets = serializers.JSONField(required=False, write_only=True, default=None)
    enabled = serializers.BooleanField(required=False, default=True)


class StorePatchInput(StrictSerializer):
    name = serializers.CharField(max_length=64, required=False)
    config = serializers.JSONField(required=False)
    secrets = serializers.JSONField(required=False, write_only=True)
    enabled = serializers.BooleanField(required=False)


class LastCheckOutput(serializers.Serializer):
    ok = serializers.BooleanField(source="last_check_ok", allow_null=True)
    detail = serializers.CharField(source="last_check_detail")
    at = serializers.DateTimeField(source="last_check_at", allow_null=True)


class StoreOutput(serializers.ModelSerializer):
    config = serializers.JSONField()
    has_secrets = serializers.BooleanField()
    last_check = LastCheckOutput(source="*")

    class Meta:
        model = Store
        fields = [
            "id",
            "name",
            "kind",
            "config",
            "has_secrets",
            "enabled",
            "last_check",
            "created_at",
            "updated_at",
        ]


class TestOutput(serializers.Serializer):
    ok = serializers.BooleanField()
    detail = serializers.CharField()


def _store(store_id: Any) -> Store:
    store = Store.objects.filter(id=store_id).first()
    if store is None:
        raise Http404("No store with this id.")
    return store


def _busy(exc: StoreBusy) -> Response:
    return Response({"error": exc.message, "store": exc.store.name}, status=status.HTTP_409_CONFLICT)


class StoreListCreateApi(StaffApi):
    @extend_schema(operation_id="stores_list", responses=StoreOutput(many=True))
    def get(self, request: Request) -> Response:
        workflow.builtin_store()
        return Response(StoreOutput(Store.objects.order_by("created_at", "name"), many=True).data)

    @extend_schema(
        operation_id="stores_create", request=StoreInput, responses={201: StoreOutput, 400: BAD_INPUT}
    )
    def post(self, request: Request) -> Response:
        data = StoreInput(data=request.data if request.data is not None else {})
        data.is_valid(raise_exception=True)
        values = data.validated_data
        store = store_create(
            name=values["name"],
            kind=values["kind"],
            config=values["config"],
            secrets=values["secrets"],
            enabled=values["enabled"],
            actor=actor_of(request),
        )
        return Response(StoreOutput(store).data, status=status.HTTP_201_CREATED)


class StoreDetailApi(StaffApi):
    @extend_schema(operation_id="stores_retrieve", responses={200: StoreOutput, 404: NOT_FOUND})
    def get(self, request: Request, store_id: Any) -> Response:
        return Response(StoreOutput(_store(store_id)).data)

    @extend_schema(
        operation_id="stores_partial_update",
        request=StorePatchInput,
        responses={200: StoreOutput, 400: BAD_INPUT, 404: NOT_FOUND, 409: BUSY},
    )
    def patch(self, request: Request, store_id: Any) -> Response:
        store = _store(store_id)
        data = StorePatchInput(data=request.data if request.data is not None else {})
        data.is_valid(raise_exception=True)
        try:
            store = store_update(store=store, actor=actor_of(request), **data.validated_data)
        except StoreBusy as exc:
            return _busy(exc)
        return Response(StoreOutput(store).data)

    @extend_schema(
        operation_id="stores_disable",
        description="Disables the store (it is kept for the proofs that name it).",
        responses={200: StoreOutput, 404: NOT_FOUND, 409: BUSY},
    )
    def delete(self, request: Request, store_id: Any) -> Response:
        try:
            store = store_disable(store=_store(store_id), actor=actor_of(request))
        except StoreBusy as exc:
            return _busy(exc)
        return Response(StoreOutput(store).data)


class StoreTestApi(StaffApi):
    @extend_schema(operation_id="stores_test", request=None, responses={200: TestOutput, 404: NOT_FOUND})
    def post(self, request: Request, store_id: Any) -> Response:
        ok, detail = store_test(store=_store(store_id), actor=actor_of(request))
        return Response({"ok": ok, "detail": detail})
