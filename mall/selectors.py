"""Reads over orders. The definition of a purchase lives here and only here; so do the purchased lines the
rule tags read (``member_purchase_lines``)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from django.db import connection
from django.db.models import DecimalField, ExpressionWrapper, F, QuerySet

from mall.models import PAID_STATUSES, Order, OrderLine, Product
from members.tags import LINE_COLUMNS
from retail_crm.models import Brand


def purchases(queryset: QuerySet[Order] | None = None) -> QuerySet[Order]:
    """A purchase: a paid order whose net amount (paid − refunded) is greater than zero.

    Segmentation, metrics and the dashboard all count purchases through this.
    """
    qs = Order.objects.all() if queryset is None else queryset
    return (
        qs.filter(status__in=PAID_STATUSES)
        .annotate(net=ExpressionWrapper(F("paid_amount") - F("refunded_amount"),
                                        output_field=DecimalField(max_digits=14, decimal_places=2)))
        .filter(net__gt=0)
    )


# The order-line field behind each column of members.tags.LINE_COLUMNS (``member_purchase_lines``).
_PURCHASE_LINE_LOOKUPS = {
    "member_id": "order__member_id", "ordered_at": "order__ordered_at", "quantity": "quantity",
    "amount": "amount", "refunded": "refunded_amount", "unit_price": "unit_price", "line_list_price": "list_price",
    "sku_list_price": "sku__list_price", "colour": "sku__colour", "size": "sku__size", "material": "sku__material",
    "category": "sku__product__category", "season": "sku__product__season", "channel": "order__channel",
    "store_id": "order__store_id",
}
_TEXT_COLUMNS = ("colour", "size", "material", "category", "season", "channel")


def _has_copy() -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        return hasattr(cursor.cursor, "copy_expert")


def _copy_frame(queryset, columns: tuple[str, ...], dtypes: dict) -> pd.DataFrame:
    """Stream ``queryset``'s rows through PostgreSQL COPY into a frame (one query, no Python row objects)."""
    sql, params = queryset.query.sql_with_params()
    buffer = io.BytesIO()
    with connection.cursor() as cursor:
        raw = cursor.cursor
        raw.copy_expert(f"COPY ({raw.mogrify(sql, params).decode()}) TO STDOUT WITH (FORMAT csv)", buffer)
    buffer.seek(0)
    # keep_default_na off: an empty size is "no value", while the text "NA" is a real value.
    return pd.read_csv(buffer, header=None, names=list(columns), dtype=dtypes, keep_default_na=False,
                       na_values={c: [""] for c in columns})


def _cents(values: pd.Series) -> pd.Series:
    # Money arrives as text (COPY) or Decimal (ORM): exact to the cent through float for amounts < 10^13.
    return np.rint(pd.to_numeric(values.astype("float64")) * 100).astype("int64")


def member_purchase_lines(*, brand: Brand, member_ids: list[int] | None) -> pd.DataFrame:
    """The brand's purchased order lines with a member, one row per line, money in integer cents.

    Answers the ``member_purchase_lines`` hook of ``members.tags`` (the rule tags): one query, streamed
    through COPY on PostgreSQL.
    """
    queryset = OrderLine.objects.filter(brand=brand, order__member__isnull=False,
                                        order_id__in=purchases().values("pk"))
    if member_ids is not None:
        queryset = queryset.filter(order__member_id__in=member_ids)
    queryset = queryset.values_list(*(_PURCHASE_LINE_LOOKUPS[column] for column in LINE_COLUMNS))
    if _has_copy():
        frame = _copy_frame(queryset, LINE_COLUMNS,
                            {**{c: "category" for c in _TEXT_COLUMNS}, "ordered_at": "string"})
    else:
        frame = pd.DataFrame.from_records(list(queryset), columns=list(LINE_COLUMNS))
        for column in _TEXT_COLUMNS:
            frame[column] = frame[column].replace("", None).astype("category")
    frame["ordered_at"] = pd.to_datetime(frame["ordered_at"], utc=True, format="ISO8601")
    frame["member_id"] = frame["member_id"].astype("int64")
    frame["quantity"] = frame["quantity"].astype("int64")
    frame["store_id"] = pd.to_numeric(frame["store_id"]).astype("Int64")
    for column in ("amount", "refunded", "unit_price", "line_list_price"):
        frame[column] = _cents(frame[column])
    frame["sku_list_price"] = _cents(frame["sku_list_price"].fillna(0))
    return frame


def brand_product_codes(*, brand_id: int, categories: tuple[str, ...]) -> list[str]:
    """The codes of ``brand_id``'s products in one of ``categories`` (exact names): the ``brand_product_codes``
    hook behaviour tag rules ask (members.behaviour_tags). One query on the (brand, category) index."""
    return list(Product.objects.filter(brand_id=brand_id, category__in=categories).order_by("code")
                .values_list("code", flat=True))
