import os

from django.core.management.base import BaseCommand

from retail_crm.management.importing import run_import
from retail_crm.services import GUIDE_COLUMNS, guide_import


class Command(BaseCommand):
    help = ("Create or update guides and their staff logins from a CSV with header "
            + ",".join(GUIDE_COLUMNS) + ". New logins get an unusable password unless "
            "GUIDE_INITIAL_PASSWORD is set. Idempotent; bad rows are reported, good rows imported.")

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--report", help="write rejected rows (line,reason) to this CSV")

    def handle(self, *args, file, report=None, **options):
        password = os.environ.get("GUIDE_INITIAL_PASSWORD") or None
        run_import(self, path=file, columns=GUIDE_COLUMNS, report_path=report,
                   importer=lambda rows: guide_import(rows=rows, initial_password=password))
