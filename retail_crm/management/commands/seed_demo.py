import datetime as dt
import time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from retail_crm.demo.seed import DEMO_PASSWORD, demo_delete, demo_exists, demo_seed


class Command(BaseCommand):
    help = ("Build a realistic demo group (5 brands, 4 regions each, stores of every kind, 10 guides a store, "
            "20,000+ members, 18 months of orders). Deterministic with --seed; a second run changes nothing.")

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=20261122)
        parser.add_argument("--scale", type=float, default=1.0,
                            help="multiply members (and, above 1, stores); e.g. 10 for benchmarks")
        parser.add_argument("--end-date", help="last day of demo orders, YYYY-MM-DD (default: today)")
        parser.add_argument("--reset", action="store_true", help="delete the demo group first, then seed")

    def handle(self, *args, seed, scale, end_date=None, reset=False, **options):
        if scale <= 0:
            raise CommandError("--scale must be greater than 0")
        try:
            end = dt.date.fromisoformat(end_date) if end_date else timezone.localdate()
        except ValueError:
            raise CommandError(f"--end-date {end_date!r} is not a date (YYYY-MM-DD)") from None
        if reset:
            demo_delete()
        if demo_exists():
            self.stdout.write("Demo data is already present; nothing changed (use --reset to rebuild it).")
            return
        started = time.monotonic()
        self.stdout.write(f"Seeding demo group (seed {seed}, scale {scale}, orders up to {end})…")
        result = demo_seed(seed=seed, scale=scale, end_date=end, stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS(
            f"Seeded {result.brands} brands, {result.stores} stores, {result.guides} guides, {result.members} "
            f"members ({result.memberships} brand memberships), {result.orders} orders / {result.order_lines} "
            f"lines in {time.monotonic() - started:.1f}s."))
        self.stdout.write(f"\nDemo logins (password for all: {DEMO_PASSWORD}):")
        for role, username, scope in result.logins:
            self.stdout.write(f"  {role:<15} {username:<18} {scope}")
