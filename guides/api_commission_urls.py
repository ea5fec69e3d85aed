"""Commission and withdrawal routes, relative to ``/api/v1/`` (views in guides/api_commission.py)."""

from django.urls import path

from guides import api_commission as api

urlpatterns = [
    path("guides/commission/", api.CommissionApi.as_view(), name="guides-commission"),
    path("guides/withdrawals/", api.WithdrawalListCreateApi.as_view(), name="guides-withdrawals"),
    *[path(f"guides/withdrawals/<int:pk>/{decision}/", api.WithdrawalDecisionApi.as_view(decision=decision),
           name=f"guides-withdrawal-{decision}") for decision in ("approve", "reject", "paid")],
]
