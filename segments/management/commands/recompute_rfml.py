import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from retail_crm.models import Brand
from segments.rfm import rfm_recompute


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--as-of {value!r}: expected a date as YYYY-MM-DD") from None


class Command(BaseCommand):
    help = ("Recompute RFML classes, lifecycle stages and the consumption cycle of one brand as of a local date "
            "(default today) over a window of days (default: the brand's setting, 365). Stores a run; safe to "
            "run twice.")

    def add_arguments(self, parser):
        parser.add_argument("--brand", required=True, help="brand code")
        parser.add_argument("--as-of", help="YYYY-MM-DD in the group's time zone (default: today)")
        parser.add_argument("--window-days", type=int, help="window length in days (default: the brand's setting)")

    def handle(self, *args, brand, as_of=None, window_days=None, **options):
        target = Brand.objects.filter(code=brand).first()
        if target is None:
            raise CommandError(f"--brand {brand}: no such brand")
        if window_days is not None and not 1 <= window_days <= 3660:
            raise CommandError(f"--window-days {window_days}: must be between 1 and 3660")
        run = rfm_recompute(brand=target, as_of=_date(as_of) if as_of else None, window_days=window_days)
        counts = " ".join(f"{slug}={n}" for slug, n in run.counts.items())
        self.stdout.write(
            f"RFML {target.code} as of {run.as_of} (window {run.window_days} days): {run.members} classified, "
            f"{run.lapsed} lapsed; medians R={run.median_recency_days} F={run.median_frequency} "
            f"M={run.median_monetary}; cycle {run.cycle_days} days; {counts}; {run.duration_ms} ms")
