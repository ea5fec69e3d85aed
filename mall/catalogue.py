"""Reads for the group mall: the listing across brands with filters, and a product with its stock."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Exists, Min, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce

from mall.models import Order, Product, ProductImage, Sku, Stock


@dataclass(frozen=True)
class CatalogueFilter:
    group_id: int | None = None
    brands: tuple[str, ...] = ()
    category: str = ""
    price_min: Decimal | None = None
    price_max: Decimal | None = None
    size: str = ""
    q: str = ""


def product_list(*, filters: CatalogueFilter) -> QuerySet[Product]:
    """Active products, cheapest list price and stock on hand annotated; ``size`` means that size is in stock."""
    qs = Product.objects.filter(is_active=True).select_related("brand")
    if filters.group_id is not None:
        qs = qs.filter(brand__group_id=filters.group_id)
    if filters.brands:
        qs = qs.filter(brand__code__in=filters.brands)
    if filters.category:
        qs = qs.filter(category=filters.category)
    if filters.q:
        qs = qs.filter(Q(name__icontains=filters.q) | Q(code__iexact=filters.q) | Q(category__icontains=filters.q))
    if filters.size:
        qs = qs.filter(Exists(Stock.objects.filter(sku__product=OuterRef("pk"), sku__size=filters.size,
                                                   quantity__gt=0)))
    qs = qs.annotate(price_from=Min("skus__list_price"), member_price_from=Min("skus__member_price"),
                     in_stock=Coalesce(Sum("skus__stock__quantity"), 0))
    if filters.price_min is not None:
        qs = qs.filter(price_from__gte=filters.price_min)
    if filters.price_max is not None:
        qs = qs.filter(price_from__lte=filters.price_max)
    first_image = ProductImage.objects.filter(product=OuterRef("pk")).order_by("sort", "pk").values("url")[:1]
    return qs.annotate(image=Subquery(first_image)).order_by("brand__code", "code")


def product_detail(*, product_id: int, group_id: int | None = None) -> Product | None:
    """One active product with its SKUs (each with its stock) and images, or None."""
    qs = Product.objects.filter(pk=product_id, is_active=True).select_related("brand").prefetch_related(
        Prefetch("skus", queryset=Sku.objects.select_related("stock").order_by("code")), "images")
    if group_id is not None:
        qs = qs.filter(brand__group_id=group_id)
    return qs.first()


def orders_for_member(*, member, status: str = "") -> QuerySet[Order]:
    qs = Order.objects.filter(member=member).select_related("brand").prefetch_related("lines__sku__product")
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("-ordered_at", "-pk")


def order_for_member(*, member, order_no: str) -> Order | None:
    return (Order.objects.filter(member=member, order_no=order_no).select_related("brand", "guide")
            .prefetch_related("lines__sku__product", "transitions").first())

