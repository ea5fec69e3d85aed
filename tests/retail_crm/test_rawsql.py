"""retail_crm.rawsql: hand-written SQL that reads and writes exactly what the ORM would (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from mall.checkout import LineRequest, _lock_coupon, checkout_price
from mall.coupons import coupon_issue
from mall.models import CouponTemplate, Product, Sku, Stock, StockMovement
from retail_crm import rawsql
from tests.factories import BrandFactory, MemberFactory, RetailGroupFactory

D = Decimal
ON_SQLITE = settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")


@pytest.fixture
def sku(db):
    brand = BrandFactory(code="WOM")
    product = Product.objects.create(brand=brand, code="DRESS", name="真丝连衣裙", category="连衣裙")
    sku = Sku.objects.create(product=product, brand=brand, code="DRESS-M", colour="黑色", size="M",
                             list_price=D("599.00"), member_price=D("509.50"), cost_price=D("200.25"))
    Stock.objects.create(sku=sku, quantity=7)
    return sku


def test_load_gives_the_values_the_orm_gives_decimals_booleans_and_aware_datetimes(sku):
    fields = ("id", "brand_id", "code", "name", "is_active", "created_at")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {rawsql.columns(Product, 'p', fields)} FROM {rawsql.table(Product)} p")
        product = rawsql.load(Product, fields, cursor.fetchone())
        cursor.execute(f"SELECT {rawsql.columns(Sku, 's', ('id', 'list_price', 'member_price'))} "
                       f"FROM {rawsql.table(Sku)} s")
        loaded = rawsql.load(Sku, ("id", "list_price", "member_price"), cursor.fetchone())
    orm = Product.objects.get()
    assert [getattr(product, f) for f in fields] == [getattr(orm, f) for f in fields]
    assert (product.is_active, type(product.is_active), product.created_at.tzinfo is not None) == (True, bool, True)
    assert (loaded.list_price, loaded.member_price) == (D("599.00"), D("509.50"))
    assert type(loaded.member_price) is D
    assert product._state.adding is False
    # A field the row did not hold is deferred and loads on first use, as with .only().
    assert loaded.get_deferred_fields() >= {"code", "cost_price"} and loaded.cost_price == D("200.25")


def test_insert_sets_keys_and_auto_now_add_and_stores_what_save_would(sku):
    before = timezone.now()
    moves = [StockMovement(sku=sku, delta=-2, reason="reserve"), StockMovement(sku=sku, delta=5, reason="adjust",
                                                                               note="到货")]
    rawsql.insert(moves)
    stored = list(StockMovement.objects.order_by("pk").values_list("pk", "sku_id", "delta", "reason", "note"))
    assert stored == [(moves[0].pk, sku.pk, -2, "reserve", ""), (moves[1].pk, sku.pk, 5, "adjust", "到货")]
    assert moves[0].pk < moves[1].pk and moves[0]._state.adding is False
    assert before <= moves[0].at <= timezone.now()
    assert StockMovement.objects.get(pk=moves[0].pk).at == moves[0].at


def test_update_writes_only_the_named_fields(sku):
    sku.list_price, sku.code = D("499.00"), "CHANGED-IN-MEMORY-ONLY"
    rawsql.update(sku, ("list_price",))
    assert Sku.objects.values_list("code", "list_price").get(pk=sku.pk) == ("DRESS-M", D("499.00"))


def test_batch_returns_the_last_statements_rows_and_a_failure_rolls_every_statement_back(sku):
    rows = rawsql.batch([
        (f"UPDATE {rawsql.table(Stock)} SET quantity = quantity - %s WHERE sku_id = %s", [2, sku.pk]),
        rawsql.insert_statement([StockMovement(sku=sku, delta=-2, reason="reserve")])])
    assert rows == [(StockMovement.objects.get().pk,)] and Stock.objects.get(sku=sku).quantity == 5
    with pytest.raises(IntegrityError), transaction.atomic():
        rawsql.batch([
            rawsql.insert_statement([StockMovement(sku=sku, delta=-1, reason="reserve")], returning=False),
            (f"UPDATE {rawsql.table(Stock)} SET quantity = quantity - %s WHERE sku_id = %s", [6, sku.pk])])
    assert (Stock.objects.get(sku=sku).quantity, StockMovement.objects.count()) == (5, 1)


# ---------------------------------------------------------------------------- lock scope, PostgreSQL only

def _try_lock(model, pk) -> str:
    """From another connection: can this row be locked right now?"""
    outcome = []

    def probe():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"SELECT 1 FROM {rawsql.table(model)} WHERE {rawsql.qn(model._meta.pk.column)} = %s "
                               "FOR UPDATE NOWAIT", [pk])
            outcome.append("free")
        except OperationalError:
            outcome.append("locked")
        finally:
            connection.close()

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join(timeout=30)
    return outcome[0]


@pytest.mark.skipif(ON_SQLITE, reason="row locks need PostgreSQL (set DATABASE_URL)")
@pytest.mark.django_db(transaction=True)
def test_checkout_locks_the_coupon_and_the_stock_rows_but_not_the_coupon_template_or_other_skus(sku):
    group = RetailGroupFactory()
    member = MemberFactory(group=group)
    sku.brand.group = group
    sku.brand.save()
    other = Sku.objects.create(product=sku.product, brand=sku.brand, code="DRESS-L", list_price=D("599.00"),
                               member_price=D("509.50"), cost_price=D("200.25"))
    Stock.objects.create(sku=other, quantity=3)
    template = CouponTemplate.objects.create(brand=sku.brand, name="满500减50", kind="threshold",
                                             threshold_amount=D("500.00"), discount_amount=D("50.00"),
                                             valid_days=30)
    coupon, sibling = coupon_issue(template=template, member=member), coupon_issue(template=template, member=member)
    with transaction.atomic():
        pricing = checkout_price(member=member, lines=[LineRequest(sku.pk, 1)])
        _lock_coupon(member=member, code=coupon.code, brand=pricing.brand, items_amount=D("599.00"),
                     at=timezone.now() + dt.timedelta(seconds=1))
        held = {name: _try_lock(model, pk) for name, model, pk in (
            ("stock", Stock, sku.pk), ("other stock", Stock, other.pk), ("coupon", type(coupon), coupon.pk),
            ("sibling coupon", type(coupon), sibling.pk), ("template", CouponTemplate, template.pk),
            ("sku", Sku, sku.pk))}
    assert held == {"stock": "locked", "other stock": "free", "coupon": "locked", "sibling coupon": "free",
                    "template": "free", "sku": "free"}
    assert pricing.stock == {sku.pk: 7}
    assert (_try_lock(Stock, sku.pk), _try_lock(type(coupon), coupon.pk)) == ("free", "free")
