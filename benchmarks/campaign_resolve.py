"""Benchmark: resolving a 1,000,000-member campaign and queuing its sends (issue 17 target: under 60 s).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench_campaign .venv/bin/python \
        benchmarks/campaign_resolve.py --members 1000000

Creates the database if it is missing and migrates it. The first time (or with ``--regenerate``) it generates
one brand of ``--members`` members in SQL (see ``benchmarks/_marketing_data.py``: openids, subscribe consents,
bound guides, opt-outs, recent purchases, recent messages). Each run then removes the campaigns an earlier run
left, creates a campaign to the whole brand (subscribe message while a consent is left, else SMS; two A/B
variants; 10 % holdout; a coupon; {name} {guide} {link} {coupon} rendered per member) and times
``campaign_launch``, which starts the run and (Celery eager, no broker) resolves it: every member's
recipient row and, for those not held out, the delivery queued or held back with its reason. Prints the wall
time, each range's time (the resolve logs it), the outcome counts and the load average (the machine may be
shared).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time

from _marketing_data import campaign_new, campaign_reset, ensure_database, generate, setup_django

BRAND_CODE = "BCAMP"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--regenerate", action="store_true", help="drop the database and generate the data anew")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/crm_bench_campaign")
    ensure_database(url, drop=args.regenerate)
    setup_django(url)

    from django.db.models import Count
    from django.utils import timezone

    from marketing.campaigns import campaign_launch
    from marketing.models import CampaignRecipient, CampaignRun, Delivery
    from members.models import BrandMembership

    # A weekday at 10:00 local: outside quiet hours whenever the benchmark runs.
    run_at = timezone.make_aware(dt.datetime.combine(timezone.localdate() - dt.timedelta(days=1), dt.time(10)))
    if not BrandMembership.objects.filter(brand__code=BRAND_CODE).exists():
        started = time.perf_counter()
        generate(args.members, brand_code=BRAND_CODE, run_at=run_at)
        print(f"generated {args.members:,} members in {time.perf_counter() - started:.1f} s")
    else:
        print(f"reusing {BrandMembership.objects.filter(brand__code=BRAND_CODE).count():,} members "
              "(--regenerate to build them anew)")
    removed = campaign_reset(BRAND_CODE)
    if removed:
        print(f"removed {removed:,} deliveries of earlier runs")

    campaign = campaign_new(BRAND_CODE)
    started = time.perf_counter()
    campaign_launch(campaign=campaign, at=run_at)  # starts the run; the eager task resolves it after the commit
    elapsed = time.perf_counter() - started
    run = CampaignRun.objects.get(campaign=campaign)
    recipients = CampaignRecipient.objects.filter(run=run)
    outcomes = dict(recipients.values_list("outcome").annotate(n=Count("pk")).values_list("outcome", "n"))
    held = dict(Delivery.objects.filter(source=run.source, status="held").values_list("hold_reason")
                .annotate(n=Count("pk")).values_list("hold_reason", "n"))
    channels = dict(Delivery.objects.filter(source=run.source).exclude(status="held").values_list("channel")
                    .annotate(n=Count("pk")).values_list("channel", "n"))
    total = sum(outcomes.values())
    print(f"resolved and queued {total:,} members in {elapsed:.1f} s ({total / elapsed:,.0f} members/s); "
          f"run {run.status}")
    print(f"  outcomes {outcomes}; held back {held}; queued by channel {channels}")
    print(f"  load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; target < 60 s at 1,000,000")


if __name__ == "__main__":
    main()
