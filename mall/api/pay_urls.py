"""Payment and refund routes, relative to ``/api/v1/`` (the project includes this module there)."""

from django.urls import path

from mall.api import payment_views, refund_views

urlpatterns = [
    path("mp/orders/<str:order_no>/pay/", payment_views.OrderPayApi.as_view(), name="mp-order-pay"),
    path("mp/orders/<str:order_no>/refunds/", refund_views.OrderRefundRequestApi.as_view(),
         name="mp-order-refund-request"),
    path("pay/notify/wechat/", payment_views.PaymentNotifyApi.as_view(), name="pay-notify-wechat"),
    path("mall/refunds/", refund_views.RefundListApi.as_view(), name="staff-refund-list"),
    path("mall/refunds/<int:pk>/approve/", refund_views.RefundApproveApi.as_view(), name="staff-refund-approve"),
    path("mall/refunds/<int:pk>/reject/", refund_views.RefundRejectApi.as_view(), name="staff-refund-reject"),
]
