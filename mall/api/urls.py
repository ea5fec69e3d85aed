from django.urls import path

from mall.api import pos_views

urlpatterns = [
    path("pos/orders/import/", pos_views.PosOrderImportApi.as_view(), name="api-pos-order-import"),
]
