from django.contrib import admin

from mall.models import Order, OrderLine, Product, Sku
from retail_crm.admin_scoping import ScopedModelAdmin


class SkuInline(admin.TabularInline):
    model = Sku
    extra = 0


@admin.register(Product)
class ProductAdmin(ScopedModelAdmin):
    list_display = ("code", "name", "brand", "category", "season", "is_active")
    list_filter = ("brand", "category", "season")
    search_fields = ("code", "name")
    inlines = [SkuInline]
    write_roles = frozenset({"hq", "brand_operator"})


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    raw_id_fields = ("sku",)


@admin.register(Order)
class OrderAdmin(ScopedModelAdmin):
    list_display = ("order_no", "brand", "channel", "status", "store", "ordered_at", "total_amount",
                    "paid_amount", "refunded_amount")
    list_filter = ("brand", "channel", "status")
    search_fields = ("order_no",)
    date_hierarchy = "ordered_at"
    raw_id_fields = ("member", "guide", "store")
    list_select_related = ("brand", "store")
    inlines = [OrderLineInline]
    write_roles = frozenset()
