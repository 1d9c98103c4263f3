"""Thin views of the Erasure API: parse with an Input serializer, call one service or selector, answer with an
Output serializer. Domain errors become answers: IllegalTransition → 409 with the state and the allowed actions,
ErasureInputError → 400 naming the field."""

from typing import Any

from django.contrib.auth import get_user_model
from django.http import Http404
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from memories.auth import IsStaffKey
from memories.models import LegalHold

from .. import selectors, services
from ..models import TRANSITIONS, Action, Channel, ErasureRequest, Regulation, State
from ..services.stores import StoreUnreachable
from . import serializers as s

CONFLICT = OpenApiResponse(s.ConflictOutput, description="Illegal transition: the state and allowed actions")
BAD_INPUT = OpenApiResponse(description="Bad input: the body names the field")
# What a move on one request answers (the actions below and assign).
MOVE_RESPONSES = {
    200: s.DetailOutput,
    400: BAD_INPUT,
    404: OpenApiResponse(description="Not found"),
    409: CONFLICT,
}


def actor_of(request: Request) -> str:
    return str(getattr(request.user, "username", "") or "apikey")


class StaffApi(APIView):
    permission_classes = [IsStaffKey]

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, services.IllegalTransition):
            body = {"error": exc.message, "state": exc.state, "allowed_actions": exc.allowed_actions}
            return Response(body, status=status.HTTP_409_CONFLICT)
        if isinstance(exc, services.ErasureInputError):
            return Response({exc.field: [exc.message]}, status=status.HTTP_400_BAD_REQUEST)
        if isinstance(exc, StoreUnreachable):  # a connected store could not be counted: say which
            body = {"error": exc.message, "store": exc.store_name}
            return Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return super().handle_exception(exc)


class ReceivedCursorPagination(CursorPagination):
    ordering = "-received_at"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class PlacedCursorPagination(ReceivedCursorPagination):
    ordering = "-placed_at"


class ErasureRequestFilter(filters.FilterSet):
    state = filters.ChoiceFilter(choices=State.choices)
    regulation = filters.ChoiceFilter(choices=Regulation.choices)
    channel = filters.ChoiceFilter(choices=Channel.choices)
    overdue = filters.BooleanFilter(method="filter_overdue", label="past the due date and still open")
    assigned_to = filters.CharFilter(
        method="filter_assigned_to", label="a team member's username, or `none` for the unassigned"
    )

    class Meta:
        model = ErasureRequest
        fields = ["state", "regulation", "channel", "overdue", "assigned_to"]

    def filter_assigned_to(self, queryset: Any, name: str, value: str) -> Any:
        if not value:
            return queryset
        if value == "none":
            return queryset.filter(assigned_to__isnull=True)
        return queryset.filter(assigned_to__username=value)

    def filter_overdue(self, queryset: Any, name: str, value: bool) -> Any:
        if value is None:
            return queryset
        return selectors.erasure_request_filter_overdue(queryset, overdue=value)


class ErasureRequestListCreateApi(StaffApi, generics.GenericAPIView):
    filter_backends = [filters.DjangoFilterBackend]
    filterset_class = ErasureRequestFilter
    pagination_class = ReceivedCursorPagination
    serializer_class = s.ListOutput

    def get_queryset(self) -> Any:
        return selectors.erasure_request_list().select_related("assigned_to")

    @extend_schema(operation_id="erasure_requests_list", responses=s.ListOutput(many=True))
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(s.ListOutput(page, many=True).data)

    @extend_schema(
        operation_id="erasure_requests_create",
        request=s.CreateInput,
        responses={201: s.CreateOutput, 400: BAD_INPUT},
    )
    def post(self, request: Request) -> Response:
        data = _valid(s.CreateInput, request)
        erasure, token = services.erasure_request_create(
            regulation=data["regulation"],
            user_ids=data["subject"]["user_ids"],
            email=data["subject"].get("email", ""),
            scope=data.get("scope") or None,
            suppress=data["suppress"],
            channel="api",
            actor=actor_of(request),
        )
        context = {"status_url": services.status_link(erasure, token)}
        return Response(s.CreateOutput(erasure, context=context).data, status=status.HTTP_201_CREATED)


def _valid(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.data if request.data is not None else {})
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _get_request(request_id: Any) -> ErasureRequest:
    erasure = selectors.erasure_request_get(request_id=request_id)
    if erasure is None:
        raise Http404("No erasure request with this id.")
    return erasure


class ErasureRequestDetailApi(StaffApi):
    @extend_schema(operation_id="erasure_requests_retrieve", responses=s.DetailOutput)
    def get(self, request: Request, request_id: Any) -> Response:
        return Response(s.DetailOutput(_get_request(request_id)).data)


# The staff actions the API offers: action -> (input serializer, summary of its operation).
ACTIONS: dict[str, tuple[type[serializers.Serializer], str]] = {
    Action.CONFIRM_IDENTITY: (
        s.ConfirmIdentityInput,
        "Mark the subject's identity as verified; optional user_ids are attached and confirmed",
    ),
    Action.SCOPE: (s.EmptyInput, "Count exactly what will be erased → scoped"),
    Action.APPROVE: (s.EmptyInput, "Start the deletion (workers take it to deleted, then verified)"),
    Action.REJECT: (s.RejectInput, "Reject with a DRP reason code → rejected"),
    Action.CANCEL: (s.NoteInput, "Cancel before the deletion started → cancelled"),
    Action.RETRY: (s.EmptyInput, "Resume a failed erasure where it stopped"),
    Action.EXTEND: (s.ExtendInput, "Extend the due date once by the regulation's allowance"),
}


class _ActionApi(StaffApi):
    """POST /api/v1/erasure-requests/{id}/<action>/; action_api() makes one subclass per action."""

    action_name: str
    input_serializer: type[serializers.Serializer] = s.EmptyInput

    def post(self, request: Request, request_id: Any) -> Response:
        erasure = _get_request(request_id)
        data = _valid(self.input_serializer, request)
        erasure = services.erasure_request_act(
            request=erasure, action=self.action_name, actor=actor_of(request), data=data
        )
        return Response(s.DetailOutput(_get_request(erasure.id)).data)


def action_api(action: str) -> type[_ActionApi]:
    """The view of one staff action, with its own operation in the schema."""
    body, summary = ACTIONS[action]
    states = ", ".join(sorted(TRANSITIONS[action].sources))

    class ActionApi(_ActionApi):
        action_name = action
        input_serializer = body

        @extend_schema(
            operation_id=f"erasure_requests_{action.replace('-', '_')}",
            summary=summary,
            description=f"Only from state {states} (the request's allowed_actions say what is possible now); "
            "otherwise 409 with the current state and the actions allowed there.",
            request=body,
            responses=MOVE_RESPONSES,
        )
        def post(self, request: Request, request_id: Any) -> Response:
            return super().post(request, request_id)

    ActionApi.__name__ = ActionApi.__qualname__ = "".join(w.title() for w in action.split("-")) + "Api"
    return ActionApi


class ErasureRequestAssignApi(StaffApi):
    @extend_schema(
        operation_id="erasure_requests_assign",
        summary="Assign the request to a privacy-team member (or unassign it)",
        description=f"Only from state {', '.join(sorted(TRANSITIONS[Action.ASSIGN].sources))}; otherwise 409. "
        "The assignee must be an active staff account (400 naming `assignee` otherwise). Audited.",
        request=s.AssignInput,
        responses=MOVE_RESPONSES,
    )
    def post(self, request: Request, request_id: Any) -> Response:
        erasure = _get_request(request_id)
        username = _valid(s.AssignInput, request)["assignee"]
        assignee = None
        if username is not None:
            assignee = get_user_model().objects.filter(username=username).first()
            if assignee is None:
                raise services.ErasureInputError("assignee", "no privacy-team member with this username")
        erasure = services.erasure_request_assign(request=erasure, assignee=assignee, actor=actor_of(request))
        return Response(s.DetailOutput(_get_request(erasure.id)).data)


class LegalHoldListCreateApi(StaffApi, generics.GenericAPIView):
    pagination_class = PlacedCursorPagination
    serializer_class = s.LegalHoldOutput

    def get_queryset(self) -> Any:
        return LegalHold.objects.all()

    @extend_schema(operation_id="legal_holds_list", responses=s.LegalHoldOutput(many=True))
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(s.LegalHoldOutput(page, many=True).data)

    @extend_schema(
        operation_id="legal_holds_create",
        request=s.LegalHoldInput,
        responses={201: s.LegalHoldOutput, 400: BAD_INPUT},
    )
    def post(self, request: Request) -> Response:
        data = _valid(s.LegalHoldInput, request)
        hold = services.legal_hold_create(
            scope=data["scope"], reason=data["reason"], note=data["note"], actor=actor_of(request)
        )
        return Response(s.LegalHoldOutput(hold).data, status=status.HTTP_201_CREATED)


class LegalHoldLiftApi(StaffApi):
    @extend_schema(
        operation_id="legal_holds_lift",
        request=None,
        responses={200: s.LegalHoldOutput, 404: OpenApiResponse(description="Not found")},
    )
    def post(self, request: Request, hold_id: Any) -> Response:
        hold = LegalHold.objects.filter(id=hold_id).first()
        if hold is None:
            raise Http404("No legal hold with this id.")
        hold, _released = services.legal_hold_release(hold=hold, actor=actor_of(request))
        return Response(s.LegalHoldOutput(hold).data)
