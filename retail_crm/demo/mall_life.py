"""The demo mall beyond past orders: warehouse stock for every SKU, coupon templates and coupons held.

Drawn from its own random stream so the orders the seed has always produced stay the same.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from mall.models import Coupon, CouponStatus, CouponTemplate, MallSettings, Stock

TEMPLATES = (  # name, kind, threshold, amount off or rate, days valid
    ("满500减50", CouponTemplate.Kind.THRESHOLD, Decimal("500.00"), Decimal("50.00"), 30),
    ("满1000减150", CouponTemplate.Kind.THRESHOLD, Decimal("1000.00"), Decimal("150.00"), 30),
    ("会员88折", CouponTemplate.Kind.DISCOUNT, Decimal("0.00"), Decimal("0.880"), 14),
)


def seed_mall_life(seeder) -> dict[str, int]:
    rng = random.Random(seeder.seed * 104729 + 3)
    stock = [Stock(sku=sku, quantity=rng.choice((0, 3, 8, 20, 50, 120)))
             for skus in seeder.skus_by_brand.values() for sku in skus]
    Stock.objects.bulk_create(stock, batch_size=5000)
    MallSettings.objects.bulk_create([MallSettings(brand=brand) for brand in seeder.brands.values()])
    templates = []
    for brand in seeder.brands.values():
        for name, kind, threshold, value, days in TEMPLATES:
            templates.append(CouponTemplate(
                brand=brand, name=name, kind=kind, threshold_amount=threshold, valid_days=days,
                discount_amount=value if kind == CouponTemplate.Kind.THRESHOLD else None,
                discount_rate=value if kind == CouponTemplate.Kind.DISCOUNT else None))
    templates = CouponTemplate.objects.bulk_create(templates)
    by_brand: dict[int, list[CouponTemplate]] = {}
    for template in templates:
        by_brand.setdefault(template.brand_id, []).append(template)
    coupons = []
    for member_id, brand_id in seeder.membership_pairs:
        if rng.random() >= 0.12:
            continue
        template = rng.choice(by_brand[brand_id])
        issued = seeder.end - dt.timedelta(days=rng.uniform(0, 40))
        valid_to = issued + dt.timedelta(days=template.valid_days)
        status = CouponStatus.AVAILABLE if valid_to > seeder.end else CouponStatus.EXPIRED
        coupons.append(Coupon(template=template, member_id=member_id, code=f"D{len(coupons) + 1:09d}",
                              issued_at=issued, valid_from=issued, valid_to=valid_to, status=status))
    Coupon.objects.bulk_create(coupons, batch_size=5000)
    return {"stock_rows": len(stock), "coupon_templates": len(templates), "coupons": len(coupons)}
