"""A campaign's results, per run and per variant: reach, restraint, delivery, clicks, conversions, lift.

Counts come from the run's recipients and their deliveries; ``converted`` and ``sales`` from the orders
carried to the campaign by a click (``CampaignConversion``: last click within the attribution window), net
of refunds. These sit beside the store and guide sales credit, never in place of it.

**Lift** compares the conversion rate of the members sent to (the rules let their message through and
queued it, whatever the provider later did with it, and even when the dispatcher held it back at send time
for an opt-out or a purchase since: taking those out would take buyers out of this group only; the
figures count them as held, by reason) with the holdout's, both counted the same way: a
member converts when they pay any order of the campaign's brand within the run's window (``started_at``
to ``started_at + attribution_days``), clicked or not, since the holdout has nothing to click. The
holdout is restricted to the members the rules would have let through (their would-be hold reason is
recorded), so both groups passed the same opt-out, consent, care-window and cap filter. Across runs the
unit is a (run, member) pair. The 95 % interval of the difference is Newcombe's hybrid score interval
(method 10 of Newcombe 1998, "Interval estimation for the difference between independent proportions"),
built from the Wilson score interval of each rate: it stays inside [-1, 1] and behaves with small counts
and rates near 0, where the Wald interval does not.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, DecimalField, Exists, ExpressionWrapper, F, OuterRef, Q, Sum

from mall.models import Order
from marketing.models import Campaign, CampaignConversion, CampaignRecipient, CampaignRun, Delivery, LinkClick

Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile
ZERO = Decimal("0.00")


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``successes / trials`` (``trials`` > 0)."""
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_interval(k1: int, n1: int, k2: int, n2: int, z: float = Z95) -> tuple[float, float, float]:
    """``p1 - p2`` and Newcombe's hybrid score interval of it (both groups non-empty)."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_interval(k1, n1, z)
    l2, u2 = wilson_interval(k2, n2, z)
    difference = p1 - p2
    low = difference - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = difference + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return difference, low, high


@dataclass(frozen=True)
class Lift:
    """Treated (sent to) against the holdout (would have been sent to), each: members and converters."""

    treated: int
    treated_converted: int
    holdout: int
    holdout_converted: int
    treated_rate: float
    holdout_rate: float
    difference: float  # treated_rate - holdout_rate (percentage points / 100)
    ci_low: float
    ci_high: float
    relative: float | None  # difference / holdout_rate; None when the holdout rate is 0
    method: str = "newcombe-wilson-95"


def lift_of(treated: int, treated_converted: int, holdout: int, holdout_converted: int) -> Lift | None:
    """None when either group is empty (no holdout, nobody sent to)."""
    if treated == 0 or holdout == 0:
        return None
    difference, low, high = newcombe_interval(treated_converted, treated, holdout_converted, holdout)
    holdout_rate = holdout_converted / holdout
    return Lift(treated=treated, treated_converted=treated_converted, holdout=holdout,
                holdout_converted=holdout_converted, treated_rate=treated_converted / treated,
                holdout_rate=holdout_rate, difference=difference, ci_low=low, ci_high=high,
                relative=difference / holdout_rate if holdout_rate else None)


@dataclass
class Figures:
    """The figures of a campaign, a run or a variant."""

    audience: int = 0  # members resolved (holdout included)
    holdout: int = 0
    held: dict[str, int] = field(default_factory=dict)  # held back, by reason (at resolve or at dispatch)
    pending: int = 0  # queued, waiting for the morning, or being handed over
    sent: int = 0  # handed to the provider (delivered ones included)
    delivered: int = 0
    failed: int = 0
    clicks: int = 0
    clicked: int = 0  # members who clicked
    converted: int = 0  # members with a paid order carried to the campaign
    orders: int = 0
    sales: Decimal = ZERO  # those orders' paid amount net of refunds
    lift: Lift | None = None
    # (treated, treated converted, holdout, holdout converted): the counts behind ``lift``
    lift_counts: tuple[int, int, int, int] = (0, 0, 0, 0)

    def add(self, other: Figures) -> None:
        """Add ``other``'s counts (not its lift; member counts add up only where the members are distinct)."""
        for name in ("audience", "holdout", "pending", "sent", "delivered", "failed", "clicks", "clicked",
                     "converted", "orders"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.sales += other.sales
        for reason, count in other.held.items():
            self.held[reason] = self.held.get(reason, 0) + count

    def set_lift(self, counts: tuple[int, int, int, int]) -> None:
        self.lift_counts, self.lift = counts, lift_of(*counts)


@dataclass(frozen=True)
class VariantResult:
    variant_id: int
    name: str
    figures: Figures


@dataclass(frozen=True)
class RunResult:
    run: CampaignRun
    figures: Figures
    variants: list[VariantResult]


@dataclass(frozen=True)
class CampaignResults:
    campaign: Campaign
    figures: Figures
    runs: list[RunResult]
    variants: list[VariantResult]  # each variant over every run


# A WeCom group send waits for the guide's confirmation (pending); a guide task counts as sent once it is on
# the guide's care list (the member is reached through the guide).
PENDING = {Delivery.Status.QUEUED, Delivery.Status.WAITING, Delivery.Status.SENDING, Delivery.Status.CONFIRMING}
SENT = {Delivery.Status.SENT, Delivery.Status.DELIVERED, Delivery.Status.TO_GUIDE}


def campaign_results(campaign: Campaign) -> CampaignResults:
    """Every figure of ``campaign``, per run and variant, and in total (a few grouped queries)."""
    runs = list(CampaignRun.objects.filter(campaign=campaign).order_by("scheduled_for", "pk"))
    variants = list(campaign.variants.order_by("pk"))
    cells: dict[tuple[int | None, int | None], Figures] = defaultdict(Figures)  # (run, variant) → figures

    recipients = CampaignRecipient.objects.filter(run__campaign=campaign)
    for row in (recipients.values("run_id", "variant_id", "outcome").annotate(n=Count("pk"))):
        cell = cells[(row["run_id"], row["variant_id"])]
        cell.audience += row["n"]
        if row["outcome"] == CampaignRecipient.Outcome.HOLDOUT:
            cell.holdout += row["n"]
    for row in (recipients.filter(delivery__isnull=False)
                .values("run_id", "variant_id", "delivery__status", "delivery__hold_reason").annotate(n=Count("pk"))):
        cell, status = cells[(row["run_id"], row["variant_id"])], row["delivery__status"]
        if status == Delivery.Status.HELD:
            cell.held[row["delivery__hold_reason"]] = cell.held.get(row["delivery__hold_reason"], 0) + row["n"]
        elif status in PENDING:
            cell.pending += row["n"]
        elif status in SENT:
            cell.sent += row["n"]
            if status == Delivery.Status.DELIVERED:
                cell.delivered += row["n"]
        elif status == Delivery.Status.FAILED:
            cell.failed += row["n"]

    clicks = LinkClick.objects.filter(campaign=campaign)
    for row in clicks.values("run_id", "variant_id").annotate(n=Count("pk"), members=Count("member", distinct=True)):
        cell = cells[(row["run_id"], row["variant_id"])]
        cell.clicks, cell.clicked = row["n"], row["members"]

    net = ExpressionWrapper(F("order__paid_amount") - F("order__refunded_amount"),
                            output_field=DecimalField(max_digits=14, decimal_places=2))
    conversions = CampaignConversion.objects.filter(campaign=campaign)
    for row in (conversions.values("run_id", "variant_id")
                .annotate(n=Count("pk"), members=Count("member", distinct=True), sales=Sum(net))):
        cell = cells[(row["run_id"], row["variant_id"])]
        # In cents: SQLite sums decimals as floats (9083.950000000000 for 9083.95).
        cell.orders, cell.converted = row["n"], row["members"]
        cell.sales = Decimal(row["sales"] or 0).quantize(ZERO)

    treated_or_control = Q(outcome=CampaignRecipient.Outcome.SENT) | Q(outcome=CampaignRecipient.Outcome.HOLDOUT,
                                                                         hold_reason="")
    paid_in_window = Order.objects.filter(
        member_id=OuterRef("member_id"), brand_id=campaign.brand_id, paid_at__gte=OuterRef("run__started_at"),
        paid_at__lte=OuterRef("run__started_at") + dt.timedelta(days=campaign.attribution_days))
    groups: dict[int, dict[tuple[str, int | None], Counter]] = defaultdict(lambda: defaultdict(Counter))
    for row in (recipients.filter(treated_or_control).annotate(bought=Exists(paid_in_window))
                .values("run_id", "variant_id", "outcome", "bought").annotate(n=Count("pk"))):
        tally = groups[row["run_id"]][(row["outcome"], row["variant_id"])]
        tally["members"] += row["n"]
        tally["converted"] += row["n"] if row["bought"] else 0

    # Within a run each member is in one variant, so member counts of a run add up over its variants;
    # over several runs (the campaign, a variant in every run) they are counted distinct again below.
    run_results, total, total_counts = [], Figures(), (0, 0, 0, 0)
    per_variant = {v.pk: (Figures(), [0, 0, 0, 0]) for v in variants}
    names = {v.pk: v.name for v in variants}
    for run in runs:
        control = groups[run.pk].get((CampaignRecipient.Outcome.HOLDOUT, None), Counter())
        figures, variant_results, treated_all = Figures(), [], Counter()
        if variants:
            figures.add(cells.get((run.pk, None), Figures()))  # the holdout, who get no variant
        for variant_id in list(names) or [None]:
            cell = cells.get((run.pk, variant_id), Figures())
            treated = groups[run.pk].get((CampaignRecipient.Outcome.SENT, variant_id), Counter())
            treated_all.update(treated)
            counts = (treated["members"], treated["converted"], control["members"], control["converted"])
            figures.add(cell)
            if variant_id is not None:
                cell.set_lift(counts)
                variant_results.append(VariantResult(variant_id, names[variant_id], cell))
                per_variant[variant_id][0].add(cell)
                per_variant[variant_id][1][:] = [a + b for a, b in zip(per_variant[variant_id][1], counts,
                                                                       strict=True)]
        counts = (treated_all["members"], treated_all["converted"], control["members"], control["converted"])
        figures.set_lift(counts)
        total_counts = tuple(a + b for a, b in zip(total_counts, counts, strict=True))
        run_results.append(RunResult(run=run, figures=figures, variants=variant_results))
        total.add(figures)
    total.clicks += cells[(None, None)].clicks  # the general link's clicks (no member, no run)
    total.set_lift(total_counts)
    total.clicked = clicks.filter(member__isnull=False).values("member_id").distinct().count()
    total.converted = conversions.values("member_id").distinct().count()
    variant_results = []
    for variant in variants:
        figures, counts = per_variant[variant.pk]
        figures.set_lift(tuple(counts))
        figures.clicked = clicks.filter(variant=variant, member__isnull=False).values("member_id").distinct().count()
        figures.converted = conversions.filter(variant=variant).values("member_id").distinct().count()
        variant_results.append(VariantResult(variant.pk, variant.name, figures))
    return CampaignResults(campaign=campaign, figures=total, runs=run_results, variants=variant_results)
