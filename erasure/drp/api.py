"""Staff API of the DRP agent registry: POST /api/v1/drp/agents/ {agent_id, name, verify_key[, trusted]}."""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from ..api.views import BAD_INPUT, StaffApi, actor_of
from .models import DrpAgent
from .services import DrpInputError, drp_agent_register


class AgentInput(serializers.Serializer):
    agent_id = serializers.CharField(max_length=100)
    name = serializers.CharField(max_length=200)
    verify_key = serializers.CharField(max_length=64)
    trusted = serializers.BooleanField(required=False, default=False)


class AgentOutput(serializers.ModelSerializer):
    paired = serializers.SerializerMethodField()

    class Meta:
        model = DrpAgent
        fields = [
            "agent_id",
            "name",
            "verify_key",
            "trusted",
            "enabled",
            "paired",
            "token_issued_at",
            "created_at",
        ]

    def get_paired(self, obj: DrpAgent) -> bool:
        return bool(obj.token_hash)


class DrpAgentListCreateApi(StaffApi):
    @extend_schema(operation_id="drp_agents_list", responses=AgentOutput(many=True))
    def get(self, request: Request) -> Response:
        return Response(AgentOutput(DrpAgent.objects.all(), many=True).data)

    @extend_schema(
        operation_id="drp_agents_create", request=AgentInput, responses={201: AgentOutput, 400: BAD_INPUT}
    )
    def post(self, request: Request) -> Response:
        serializer = AgentInput(data=request.data if request.data is not None else {})
        serializer.is_valid(raise_exception=True)
        data: dict[str, Any] = dict(serializer.validated_data)
        try:
            agent = drp_agent_register(**data, actor=actor_of(request))
        except DrpInputError as exc:
            return Response({exc.field: [exc.message]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(AgentOutput(agent).data, status=status.HTTP_201_CREATED)
