"""Guide workbench staff API routes, relative to ``/api/v1/``: task execution rates (views in
guides/api/library.py), commission and withdrawals (guides/api/commission.py)."""

from django.urls import path

from guides.api import commission, library

urlpatterns = [
    path("guides/task-execution/", library.TaskExecutionApi.as_view(), name="api-guides-task-execution"),
    path("guides/commission/", commission.CommissionApi.as_view(), name="guides-commission"),
    path("guides/withdrawals/", commission.WithdrawalListCreateApi.as_view(), name="guides-withdrawals"),
    *[path(f"guides/withdrawals/<int:pk>/{decision}/", commission.WithdrawalDecisionApi.as_view(decision=decision),
           name=f"guides-withdrawal-{decision}") for decision in ("approve", "reject", "paid")],
]
