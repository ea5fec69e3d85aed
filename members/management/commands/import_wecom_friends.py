from django.core.management.base import BaseCommand

from members.importing import WECOM_FRIEND_COLUMNS, wecom_friend_import
from retail_crm.management.importing import run_import


class Command(BaseCommand):
    help = ("Record guides' WeCom contacts from a CSV with header " + ",".join(WECOM_FRIEND_COLUMNS)
            + " (dates ISO 8601; removed_at empty while still friends). Idempotent; bad rows are reported "
            "with their line number, good rows imported.")

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--report", help="write rejected rows (line,reason) to this CSV")

    def handle(self, *args, file, report=None, **options):
        run_import(self, path=file, columns=WECOM_FRIEND_COLUMNS, report_path=report,
                   importer=lambda rows: wecom_friend_import(rows=rows))
