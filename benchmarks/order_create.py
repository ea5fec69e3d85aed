"""Benchmark: order creation through the HTTP API on gunicorn + PostgreSQL, 3 lines with a coupon.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench_orders_api .venv/bin/python benchmarks/order_create.py

Builds its own database (dropped and created): one brand, 100 products × 4 SKUs with ample stock, and
``--members`` members of the brand, each with a mini-program token and ``--coupons`` single-use 满减
coupons. Starts ``gunicorn retail_crm.wsgi -w N`` (DEBUG off) and drives
``POST /api/v1/mp/orders/create/`` from this machine with ``--procs`` × ``--threads`` keep-alive
connections for ``--seconds``: every request orders 3 random SKUs with one of the member's unused
coupons and an Idempotency-Key. Each thread owns its members, so no two requests race for one coupon.
The same server and clients then call a bare DRF endpoint (``GET /api/v1/me/``: token auth, one small
serializer) for the baseline; the report gives orders/s, p50/p95/p99, errors, and the ratio. It checks
afterwards that every 201 left exactly one pending order with 3 lines and a locked coupon.
Target (issue 4): ≥ 150 orders/s with p99 under 200 ms on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._server import SERVER_ENV, drive, free_port, prepare_database, start_gunicorn, stop_gunicorn  # noqa: E402


def seed(n_members: int, n_coupons: int) -> dict:
    import datetime as dt

    from django.db import transaction
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from mall.models import Coupon, CouponTemplate, Product, Sku, Stock
    from members.auth import member_token_issue
    from members.models import BrandMembership, Member
    from retail_crm.models import Brand, RetailGroup, StaffProfile

    with transaction.atomic():
        group = RetailGroup.objects.create(code="bench", name="Bench")
        brand = Brand.objects.create(group=group, code="BEN", name="Bench brand")
        products = Product.objects.bulk_create([Product(brand=brand, code=f"P{i:03d}", name=f"商品{i}",
                                                        category="外套") for i in range(100)])
        skus = Sku.objects.bulk_create([Sku(product=p, brand=brand, code=f"{p.code}-{size}", size=size,
                                            list_price=Decimal("399.00"), member_price=Decimal("339.00"),
                                            cost_price=Decimal("120.00"))
                                        for p in products for size in ("S", "M", "L", "XL")])
        Stock.objects.bulk_create([Stock(sku=s, quantity=10_000_000) for s in skus])
        now = timezone.now()
        members = Member.objects.bulk_create([Member(group=group, code=f"BM{i:06d}", phone=f"+86137{i:08d}",
                                                     created_at=now) for i in range(n_members)])
        BrandMembership.objects.bulk_create([BrandMembership(member=m, brand=brand, joined_at=now,
                                                             join_channel="guide_qr") for m in members])
        template = CouponTemplate.objects.create(brand=brand, name="满500减50", kind="threshold",
                                                 threshold_amount=Decimal("500.00"), discount_amount=Decimal("50.00"),
                                                 valid_days=30)
        coupons = [Coupon(template=template, member=m, code=f"B{m.pk:07d}{k:03d}", issued_at=now, valid_from=now,
                          valid_to=now + dt.timedelta(days=30)) for m in members for k in range(n_coupons)]
        Coupon.objects.bulk_create(coupons, batch_size=5000)
        tokens = [member_token_issue(member=m) for m in members]
        from django.contrib.auth import get_user_model

        staff = get_user_model().objects.create_user("bench-hq", password=None, is_staff=True)
        StaffProfile.objects.create(user=staff, role="hq", group=group)
        staff_token = Token.objects.create(user=staff).key
    return {"sku_ids": [s.pk for s in skus], "tokens": tokens,
            "coupons": [[f"B{m.pk:07d}{k:03d}" for k in range(n_coupons)] for m in members],
            "staff_token": staff_token}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=600)
    parser.add_argument("--coupons", type=int, default=20, help="coupons per member")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--baseline-seconds", type=float, default=8)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--procs", type=int, default=2, help="load-generating processes")
    parser.add_argument("--threads", type=int, default=4, help="connections per load-generating process")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    prepare_database(url)
    os.environ.update(SERVER_ENV)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from mall.models import Coupon, Order, OrderLine

    call_command("migrate", verbosity=0)
    t0 = time.perf_counter()
    ctx = seed(args.members, args.coupons)
    print(f"seeded {args.members} members × {args.coupons} coupons, 400 SKUs in {time.perf_counter() - t0:.1f} s")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    connection.close()  # the forked clients must not share this connection

    n_clients = args.procs * args.threads
    # Client c owns members c, c + n_clients, …; it walks their coupons in order, one per request.
    owned = {c: list(range(c, args.members, n_clients)) for c in range(n_clients)}
    run_tag = {"label": "warm"}

    def order_request(proc: int, thread: int, n: int):
        client = proc * args.threads + thread
        members = owned[client]
        member = members[n % len(members)]
        use = n // len(members) + (0 if run_tag["label"] == "warm" else 3)
        rng = random.Random(hash((client, n, run_tag["label"])))
        body = {"lines": [{"sku_id": sku, "quantity": 1} for sku in rng.sample(ctx["sku_ids"], 3)],
                "coupon_code": ctx["coupons"][member][use % args.coupons]}
        headers = {"Content-Type": "application/json", "Authorization": f"Member {ctx['tokens'][member]}",
                   "Idempotency-Key": f"{run_tag['label']}-{client}-{n}"}
        return "POST", "/api/v1/mp/orders/create/", headers, json.dumps(body).encode()

    def me_request(proc: int, thread: int, n: int):
        return "GET", "/api/v1/me/", {"Authorization": f"Token {ctx['staff_token']}"}, None

    def count(status: int, body: bytes) -> dict[str, int]:
        return {"created": int(status == 201), "conflicts": int(status == 409)}

    port = free_port()
    server = start_gunicorn(port, args.workers)
    try:
        warm = drive(port, order_request, procs=args.procs, threads=args.threads, seconds=2, count_response=count)
        run_tag["label"] = "run"
        run = drive(port, order_request, procs=args.procs, threads=args.threads, seconds=args.seconds,
                    count_response=count)
        base = drive(port, me_request, procs=args.procs, threads=args.threads, seconds=args.baseline_seconds)
    finally:
        stop_gunicorn(server)

    created = warm["created"] + run["created"]
    orders = Order.objects.count()
    lines_ok = OrderLine.objects.count() == 3 * orders
    coupons_ok = Coupon.objects.filter(status="locked").count() == orders
    orders_per_s = run["created"] / run["seconds"]
    print(f"\ngunicorn -w {args.workers} (sync), {args.procs}×{args.threads} keep-alive clients, "
          f"{os.cpu_count()} CPUs, {args.seconds:.0f} s")
    print(f"orders created    {run['created']:>7,}  ({orders_per_s:,.1f} orders/s); conflicts {run['conflicts']}, "
          f"errors {run['errors']}")
    print(f"latency ms        p50 {run['p50']:.1f}  p95 {run['p95']:.1f}  p99 {run['p99']:.1f}")
    print(f"bare DRF GET /api/v1/me/: {base['rps']:,.0f} requests/s, p50 {base['p50']:.1f} ms, "
          f"p99 {base['p99']:.1f} ms, errors {base['errors']}")
    print(f"ratio             order creation runs at {run['rps'] / base['rps']:.1%} of the bare endpoint's rate "
          f"(one order costs {base['rps'] / run['rps']:.1f}× a bare request)")
    ok = orders == created and lines_ok and coupons_ok
    print(f"database check    {orders:,} orders == {created:,} created, 3 lines each: {lines_ok}, "
          f"one locked coupon each: {coupons_ok}: {'OK' if ok else 'MISMATCH'}")
    target = orders_per_s >= 150 and run["p99"] < 200 and run["errors"] == 0 and ok
    print(f"target ≥ 150 orders/s, p99 < 200 ms, no errors: {'met' if target else 'NOT met'}")
    sys.exit(0 if target else 1)


if __name__ == "__main__":
    main()
