from django.core.management.base import BaseCommand, CommandError

from retail_crm.jobs import run_all
from retail_crm.models import Brand


class Command(BaseCommand):
    help = "Run every periodic job once, in order (sales facts; later attribution, RFML, tags, care lists)."

    def add_arguments(self, parser):
        parser.add_argument("--brand", help="limit to one brand code")

    def handle(self, *args, brand=None, **options):
        if brand and not Brand.objects.filter(code=brand).exists():
            raise CommandError(f"unknown brand {brand!r}")
        run_all(brand_code=brand,
                on_done=lambda name, outcome, seconds: self.stdout.write(f"{name}: {outcome} ({seconds:.1f}s)"))
