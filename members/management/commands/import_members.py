from django.core.management.base import BaseCommand, CommandError

from members.importing import MEMBER_COLUMNS, member_import
from retail_crm.management.importing import run_import
from retail_crm.models import Brand


class Command(BaseCommand):
    help = ("Create or update members of one brand from a CSV with header " + ",".join(MEMBER_COLUMNS)
            + ". Members are matched by member_code; a phone held by another member is refused. "
            "Idempotent; bad rows are reported with their line number, good rows imported.")

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--brand", required=True, help="code of the brand the members join")
        parser.add_argument("--report", help="write rejected rows (line,reason) to this CSV")

    def handle(self, *args, file, brand, report=None, **options):
        target = Brand.objects.filter(code=brand).first()
        if target is None:
            raise CommandError(f"--brand {brand}: no such brand")
        run_import(self, path=file, columns=MEMBER_COLUMNS, report_path=report,
                   importer=lambda rows: member_import(rows=rows, brand=target))
