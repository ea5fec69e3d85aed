"""Admin for the mall: catalogue and stock (HQ and brand operators write), coupons, and read-only orders.

Stock is changed through its movements' service (``mall.checkout.stock_adjust``),
never by editing the counter, so the admin shows it read-only with an action
form; orders change state only through services and are read-only here.
"""

from django import forms
from django.contrib import admin, messages
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.html import format_html

from mall.checkout import stock_adjust
from mall.models import (
    Coupon,
    CouponTemplate,
    MallSettings,
    Order,
    OrderLine,
    OrderTransition,
    Product,
    ProductImage,
    Sku,
    Stock,
    StockMovement,
)
from retail_crm.admin_scoping import ScopedModelAdmin
from retail_crm.errors import ApplicationError
from retail_crm.scoping import scoped

CATALOGUE_ROLES = frozenset({"hq", "brand_operator"})


class SkuInline(admin.TabularInline):
    model = Sku
    extra = 0
    fields = ("code", "colour", "size", "material", "list_price", "member_price", "cost_price", "stock_quantity")
    readonly_fields = ("stock_quantity",)

    @admin.display(description="stock")
    def stock_quantity(self, obj):
        return obj.stock.quantity if obj.pk and hasattr(obj, "stock") else 0


class ProductImageInline(admin.TabularInline):
    model = ProductImage
    extra = 0


@admin.register(Product)
class ProductAdmin(ScopedModelAdmin):
    list_display = ("code", "name", "brand", "category", "season", "is_active")
    list_filter = ("brand", "category", "season", "is_active")
    search_fields = ("code", "name")
    inlines = [SkuInline, ProductImageInline]
    write_roles = CATALOGUE_ROLES


class StockAdjustForm(forms.Form):
    delta = forms.IntegerField(label="change", min_value=-1_000_000, max_value=1_000_000)
    note = forms.CharField(max_length=200, required=False)


@admin.register(Stock)
class StockAdmin(ScopedModelAdmin):
    list_display = ("sku", "quantity", "updated_at", "adjust_link")
    search_fields = ("sku__code",)
    list_filter = ("sku__brand",)
    list_select_related = ("sku",)
    readonly_fields = ("sku", "quantity", "updated_at")
    write_roles = frozenset()  # the counter moves only through stock_adjust (below) and checkout

    @admin.display(description="adjust")
    def adjust_link(self, obj):
        return format_html('<a href="{}">±</a>', reverse("admin:mall_stock_adjust", args=[obj.pk]))

    def get_urls(self):
        return [path("<path:object_id>/adjust/", self.admin_site.admin_view(self.adjust_view),
                     name="mall_stock_adjust"), *super().get_urls()]

    def adjust_view(self, request, object_id):
        stock = scoped(Stock.objects.select_related("sku"), request.user).filter(pk=object_id).first()
        actor_role = self._actor(request).role
        if stock is None or not (request.user.is_superuser or actor_role in CATALOGUE_ROLES):
            messages.error(request, "No such stock row in your scope.")
            return redirect("admin:mall_stock_changelist")
        form = StockAdjustForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                stock_adjust(sku=stock.sku, delta=form.cleaned_data["delta"], user=request.user,
                             note=form.cleaned_data["note"])
                messages.success(request, f"{stock.sku.code}: stock changed by {form.cleaned_data['delta']:+d}.")
                return redirect("admin:mall_stock_changelist")
            except ApplicationError as exc:
                form.add_error("delta", exc.message)
        context = {**self.admin_site.each_context(request), "form": form, "stock": stock,
                   "title": f"Adjust stock: {stock.sku.code}", "opts": self.model._meta}
        return render(request, "admin/mall/stock_adjust.html", context)


@admin.register(StockMovement)
class StockMovementAdmin(ScopedModelAdmin):
    list_display = ("sku", "delta", "reason", "order", "by", "at", "note")
    list_filter = ("reason",)
    search_fields = ("sku__code",)
    raw_id_fields = ("sku", "order", "by")
    list_select_related = ("sku", "order", "by")
    write_roles = frozenset()


@admin.register(MallSettings)
class MallSettingsAdmin(ScopedModelAdmin):
    list_display = ("brand", "points_per_yuan", "yuan_per_point", "points_max_share", "payment_minutes",
                    "return_days")
    write_roles = CATALOGUE_ROLES


@admin.register(CouponTemplate)
class CouponTemplateAdmin(ScopedModelAdmin):
    list_display = ("name", "brand", "kind", "threshold_amount", "discount_amount", "discount_rate", "valid_days",
                    "valid_from", "valid_to", "is_active")
    list_filter = ("brand", "kind", "is_active")
    search_fields = ("name",)
    write_roles = CATALOGUE_ROLES


@admin.register(Coupon)
class CouponAdmin(ScopedModelAdmin):
    list_display = ("code", "template", "member", "status", "valid_from", "valid_to", "used_order")
    list_filter = ("status", "template__brand")
    search_fields = ("code",)
    raw_id_fields = ("member", "used_order", "template")
    list_select_related = ("template", "member", "used_order")
    write_roles = frozenset()  # issued through campaigns, used through checkout


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    raw_id_fields = ("sku",)
    can_delete = False


class OrderTransitionInline(admin.TabularInline):
    model = OrderTransition
    extra = 0
    can_delete = False
    readonly_fields = ("from_status", "to_status", "at", "by_user", "by_member", "by_system", "note")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Order)
class OrderAdmin(ScopedModelAdmin):
    list_display = ("order_no", "brand", "channel", "status", "store", "ordered_at", "total_amount",
                    "paid_amount", "refunded_amount")
    list_filter = ("brand", "channel", "status")
    search_fields = ("order_no",)
    date_hierarchy = "ordered_at"
    raw_id_fields = ("member", "guide", "store", "live_session")
    list_select_related = ("brand", "store")
    inlines = [OrderLineInline, OrderTransitionInline]
    write_roles = frozenset()
