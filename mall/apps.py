from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MallConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "mall"
    verbose_name = _("Mall")

    def ready(self) -> None:
        from retail_crm import hooks

        # A member merge moves the absorbed member's orders, coupons and cart in the merge's transaction.
        hooks.provide("member_merge", "mall.orders.orders_member_merge")
        hooks.provide("member_merge", "mall.coupons.coupons_member_merge")
        hooks.provide("member_merge", "mall.checkout.cart_member_merge")
        # Rule tags read the member's purchased lines.
        hooks.provide("member_purchase_lines", "mall.selectors.member_purchase_lines")
        # Behaviour tag rules narrowed to product categories count the events on those categories' products.
        hooks.provide("brand_product_codes", "mall.selectors.brand_product_codes")
