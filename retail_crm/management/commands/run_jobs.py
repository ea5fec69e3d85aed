import time

from django.core.management.base import BaseCommand, CommandError

from retail_crm.jobs import run_all
from retail_crm.models import Brand


class Command(BaseCommand):
    """One line per job: its name, a summary of what it did in words and numbers, and how long it took."""

    help = "Run every periodic job once, in order (sales facts; later attribution, RFML, tags, care lists)."

    def add_arguments(self, parser):
        parser.add_argument("--brand", help="limit to one brand code")

    def handle(self, *args, brand=None, **options):
        if brand and not Brand.objects.filter(code=brand).exists():
            raise CommandError(f"unknown brand {brand!r}")
        started = time.monotonic()
        count = 0

        def done(name: str, outcome: str, seconds: float) -> None:
            nonlocal count
            count += 1
            self.stdout.write(f"{name}: {outcome} ({seconds:.1f} s)")

        run_all(brand_code=brand, on_done=done)
        self.stdout.write(f"{count} jobs done in {time.monotonic() - started:.1f} s")
