"""Benchmark: the fake channel end to end through ``deliveries_dispatch``, caps enforced (target ≥ 2,000
messages/s).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench_channel .venv/bin/python \
        benchmarks/fake_channel_throughput.py --members 200000

Generates (first time, or with ``--regenerate``) one brand of ``--members`` members as
``benchmarks/campaign_resolve.py`` does, launches an SMS campaign to all of them (no holdout, a coupon,
rendered content): the rules hold back the capped (5 %), the opted-out (1 %) and those in the care window
(3 %), and queue the rest. Then it dispatches everything due with the fake adapter, in the dispatcher's
batches (claim with SKIP LOCKED and mark sending, quiet-hour check, send, record sent, issue the coupon),
and prints messages/s for the dispatch alone and for resolve + dispatch, and the load average.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time

from _marketing_data import campaign_new, campaign_reset, ensure_database, generate, setup_django

BRAND_CODE = "BCHAN"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=200_000)
    parser.add_argument("--regenerate", action="store_true", help="drop the database and generate the data anew")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/crm_bench_channel")
    ensure_database(url, drop=args.regenerate)
    setup_django(url)

    from django.db.models import Count
    from django.utils import timezone

    from mall.models import Coupon
    from marketing.campaigns import campaign_launch
    from marketing.channels import fake
    from marketing.models import CampaignRun, Delivery
    from marketing.services import deliveries_dispatch
    from members.models import BrandMembership

    run_at = timezone.make_aware(dt.datetime.combine(timezone.localdate() - dt.timedelta(days=1), dt.time(10)))
    if not BrandMembership.objects.filter(brand__code=BRAND_CODE).exists():
        started = time.perf_counter()
        generate(args.members, brand_code=BRAND_CODE, run_at=run_at)
        print(f"generated {args.members:,} members in {time.perf_counter() - started:.1f} s")
    campaign_reset(BRAND_CODE)
    Coupon.objects.filter(template__brand__code=BRAND_CODE).delete()

    campaign = campaign_new(BRAND_CODE, holdout="0", variants=False, channels=("sms",))
    started = time.perf_counter()
    campaign_launch(campaign=campaign, at=run_at)
    resolved = time.perf_counter() - started
    run = CampaignRun.objects.get(campaign=campaign)
    statuses = dict(Delivery.objects.filter(source=run.source).values_list("status").annotate(n=Count("pk"))
                    .values_list("status", "n"))
    print(f"resolved {sum(statuses.values()):,} members in {resolved:.1f} s: {statuses}")

    fake.reset()
    started = time.perf_counter()
    result = deliveries_dispatch(now=run_at + dt.timedelta(minutes=1), limits={"sms": 10**9})
    dispatched = time.perf_counter() - started
    coupons = Coupon.objects.filter(template=campaign.coupon_template).count()
    print(f"dispatched {result.sent:,} (failed {result.failed}, retried {result.retried}, deferred "
          f"{result.deferred}) in {dispatched:.1f} s: {result.sent / dispatched:,.0f} messages/s; "
          f"{len(fake.sent_messages()):,} reached the fake provider, {coupons:,} coupons issued")
    print(f"  resolve + dispatch: {result.sent / (resolved + dispatched):,.0f} messages/s; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; target ≥ 2,000 messages/s")
    fake.reset()


if __name__ == "__main__":
    main()
