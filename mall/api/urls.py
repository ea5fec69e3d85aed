from django.urls import include, path

from mall.api import mp_views, pos_views, staff_views

urlpatterns = [
    path("pos/orders/import/", pos_views.PosOrderImportApi.as_view(), name="api-pos-order-import"),
    path("mp/products/", mp_views.ProductListApi.as_view(), name="mp-product-list"),
    path("mp/products/<int:pk>/", mp_views.ProductDetailApi.as_view(), name="mp-product-detail"),
    path("mp/cart/", mp_views.CartApi.as_view(), name="mp-cart"),
    path("mp/cart/items/", mp_views.CartItemSetApi.as_view(), name="mp-cart-item-set"),
    path("mp/orders/", mp_views.OrderListApi.as_view(), name="mp-order-list"),
    path("mp/orders/create/", mp_views.OrderCreateApi.as_view(), name="mp-order-create"),
    path("mp/orders/<str:order_no>/", mp_views.OrderDetailApi.as_view(), name="mp-order-detail"),
    path("mp/orders/<str:order_no>/cancel/", mp_views.OrderCancelApi.as_view(), name="mp-order-cancel"),
    path("mp/orders/<str:order_no>/confirm-receipt/", mp_views.OrderConfirmReceiptApi.as_view(),
         name="mp-order-confirm-receipt"),
    path("mp/me/coupons/", mp_views.CouponListApi.as_view(), name="mp-coupons"),
    path("mall/orders/", staff_views.StaffOrderListApi.as_view(), name="staff-order-list"),
    path("mall/orders/<int:pk>/", staff_views.StaffOrderDetailApi.as_view(), name="staff-order-detail"),
    path("mall/orders/<int:pk>/ship/", staff_views.StaffOrderShipApi.as_view(), name="staff-order-ship"),
    path("mall/skus/<int:sku_id>/stock/adjust/", staff_views.StockAdjustApi.as_view(), name="staff-stock-adjust"),
    path("mall/coupon-templates/", staff_views.CouponTemplateListCreateApi.as_view(), name="staff-coupon-templates"),
    path("mall/coupon-templates/<int:pk>/issue/", staff_views.CouponIssueApi.as_view(), name="staff-coupon-issue"),
    path("", include("mall.api.pay_urls")),
]
