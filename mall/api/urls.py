from django.urls import path

from mall.api import mp_views, pos_views

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
]
