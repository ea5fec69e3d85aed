from django.contrib import admin

from analytics.models import SalesFact
from retail_crm.admin_scoping import ScopedModelAdmin


@admin.register(SalesFact)
class SalesFactAdmin(ScopedModelAdmin):
    list_display = ("day", "brand", "store", "guide", "channel", "orders", "gmv", "sales_flow")
    list_filter = ("brand", "channel")
    date_hierarchy = "day"
    write_roles = frozenset()

