"""Workbench routes for commission and withdrawals (views in guides/views_commission.py)."""

from django.urls import path

from guides import views_commission as views

urlpatterns = [
    path("commission/", views.commission, name="commission"),
    path("commission/withdraw/", views.commission_withdraw, name="commission_withdraw"),
    path("withdrawals/<int:pk>/", views.withdrawal_detail, name="withdrawal_detail"),
    path("withdrawals/review/", views.withdrawals_review, name="withdrawals_review"),
    path("withdrawals/<int:pk>/<str:action>/", views.withdrawal_decide, name="withdrawal_decide"),
]
