from django.core.management.base import BaseCommand, CommandError

from retail_crm.csv_import import RowInvalid
from retail_crm.management.importing import run_import
from retail_crm.services import ORG_COLUMNS, group_resolve, org_import


class Command(BaseCommand):
    help = ("Create or update brands, regions and stores from a CSV with header "
            + ",".join(ORG_COLUMNS) + ". Idempotent; bad rows are reported, good rows imported.")

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--group", help="group code (default: the only group; created if none)")
        parser.add_argument("--report", help="write rejected rows (line,reason) to this CSV")

    def handle(self, *args, file, group=None, report=None, **options):
        def importer(rows):
            # Resolved only once the file has been read, so a bad file creates no group.
            try:
                retail_group = group_resolve(code=group)
            except RowInvalid as exc:
                raise CommandError(str(exc)) from None
            return org_import(rows=rows, group=retail_group)

        run_import(self, path=file, columns=ORG_COLUMNS, report_path=report, importer=importer)
