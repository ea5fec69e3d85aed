"""Reads over the organisation, always through the scoping helper."""

from __future__ import annotations

from django.db.models import QuerySet

from retail_crm.models import Brand, Guide, Region, Store
from retail_crm.scoping import Actor, scoped


def brand_list(*, actor: Actor) -> QuerySet[Brand]:
    return scoped(Brand.objects.select_related("group"), actor).order_by("code")


def region_list(*, actor: Actor) -> QuerySet[Region]:
    return scoped(Region.objects.select_related("brand"), actor).order_by("brand__code", "code")


def store_list(*, actor: Actor) -> QuerySet[Store]:
    return scoped(Store.objects.select_related("brand", "region", "branch"), actor).order_by("code")


def guide_list(*, actor: Actor) -> QuerySet[Guide]:
    return scoped(Guide.objects.select_related("store", "store__brand", "store__region"), actor).order_by("code")
