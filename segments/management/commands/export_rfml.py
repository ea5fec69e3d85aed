import csv
import sys

from django.core.management.base import BaseCommand, CommandError

from retail_crm.models import Brand
from segments.selectors import RFML_EXPORT_COLUMNS, rfm_export_rows, rfm_latest_run


class Command(BaseCommand):
    help = ("Write the latest RFML run of one brand as CSV with header " + ",".join(RFML_EXPORT_COLUMNS)
            + " (monetary with two decimals), one row per CLASSIFIED member, ordered by member code. "
            "Lapsed members (no purchase in the window, so no class) are not included.")

    def add_arguments(self, parser):
        parser.add_argument("--brand", required=True, help="brand code")
        parser.add_argument("--output", help="file to write (default: standard output)")

    def handle(self, *args, brand, output=None, **options):
        target = Brand.objects.filter(code=brand).first()
        if target is None:
            raise CommandError(f"--brand {brand}: no such brand")
        run = rfm_latest_run(brand=target)
        if run is None:
            raise CommandError(f"brand {brand} has no RFML run yet: run recompute_rfml --brand {brand} first")
        try:
            handle = open(output, "w", newline="", encoding="utf-8") if output else sys.stdout
        except OSError as exc:
            raise CommandError(f"--output {output}: {exc.strerror}") from None
        try:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(RFML_EXPORT_COLUMNS)
            n = 0
            for row in rfm_export_rows(run=run):
                writer.writerow(row)
                n += 1
        finally:
            if output:
                handle.close()
        if output:
            self.stdout.write(f"{n} members written to {output}")
