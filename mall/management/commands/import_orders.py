from django.core.management.base import BaseCommand, CommandError

from mall.importing import ORDER_COLUMNS, order_import
from retail_crm.management.importing import run_import
from retail_crm.models import Brand


class Command(BaseCommand):
    help = ("Import order lines (store POS and other channels) for one brand from a CSV with header "
            + ",".join(ORDER_COLUMNS) + ". Idempotent by order number: re-importing updates, never duplicates. "
            "Bad rows (and the other lines of their order) are reported; good orders go in.")

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--brand", required=True, help="brand code")
        parser.add_argument("--report", help="write rejected rows (line,reason) to this CSV")

    def handle(self, *args, file, brand, report=None, **options):
        target = Brand.objects.filter(code=brand).first()
        if target is None:
            raise CommandError(f"--brand {brand}: no such brand")

        def importer(rows):
            result = order_import(brand=target, rows=rows)
            if result.members_created:
                self.stdout.write(f"members created: {result.members_created}")
            return result.report

        run_import(self, path=file, columns=ORDER_COLUMNS, report_path=report, importer=importer)
