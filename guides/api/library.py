"""Staff API of the guide workbench (``/api/v1/guides/…``): task execution rates for managers.

Rows are limited to the caller's scope (``retail_crm.scoping``); a task named in
the query must be one the caller can see (404 otherwise).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers

from guides import library
from retail_crm.api.views import ScopedMixin
from retail_crm.errors import ApplicationError, ErrorCode


class TaskExecutionApi(ScopedMixin, generics.ListAPIView):
    """Task execution per guide, store or region: assignments, executed, rate, audience and members reached.

    The rate is executed ÷ assigned over the published and closed tasks in the
    caller's scope (or one task), four decimals rounded half up; a guide's row
    counts under the guide's current store and region.
    """

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "TaskExecutionQuery"

        group_by = serializers.ChoiceField(choices=["guide", "store", "region"], default="guide",
                                           help_text="One row per guide, store or region")
        task = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1,
                                        help_text="Only this task (id)")

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "TaskExecutionRow"

        id = serializers.IntegerField(help_text="Id of the guide, store or region")
        code = serializers.CharField()
        name = serializers.CharField()
        brand = serializers.CharField(help_text="Brand code")
        assigned = serializers.IntegerField(help_text="Task assignments")
        executed = serializers.IntegerField(help_text="Assignments executed")
        rate = serializers.DecimalField(max_digits=5, decimal_places=4, help_text="executed ÷ assigned")
        audience = serializers.IntegerField(help_text="Audience members at publishing, summed over assignments")
        reached = serializers.IntegerField(help_text="Members reached by the executions")

    serializer_class = OutputSerializer
    filter_backends: list = []

    @extend_schema(parameters=[InputSerializer],
                   responses={200: OutputSerializer(many=True),
                              404: OpenApiResponse(description="The task is not in your scope")})
    def get(self, request, *args, **kwargs):
        query = self.InputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        task = None
        if data.get("task") is not None:
            task = library.tasks_in_scope(actor=self.actor).filter(pk=data["task"]).first()
            if task is None:
                raise ApplicationError(ErrorCode.NOT_FOUND, "No such task.", status=404)
        rows = library.execution_rates(actor=self.actor, group_by=data["group_by"], task=task)
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(self.OutputSerializer(page, many=True).data)
