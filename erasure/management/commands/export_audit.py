"""`manage.py export_audit --from YYYY-MM-DD --to YYYY-MM-DD --format csv|json --output FILE`: the compliance export
exactly as GET /api/v1/audit/export/ gives it (the same Download: erasure.export.audit_export), written to FILE
(`-` for standard output). Records one `audit.exported` audit entry, as the API does."""

import sys
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from erasure.export import audit_export


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"not a date YYYY-MM-DD: {value!r}") from None


class Command(BaseCommand):
    help = "Writes the compliance export (requests and their audit trail in a date range) to a file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="date_from", type=_day, help="first day (UTC), YYYY-MM-DD")
        parser.add_argument("--to", dest="date_to", type=_day, help="last day (UTC, inclusive), YYYY-MM-DD")
        parser.add_argument("--format", choices=["csv", "json"], default="json")
        parser.add_argument("--output", required=True, help="the file to write, or - for standard output")

    def handle(self, *args: Any, **options: Any) -> None:
        start, end, fmt = options["date_from"], options["date_to"], options["format"]
        if start and end and start > end:
            raise CommandError("--to must not be before --from")
        download = audit_export(fmt=fmt, date_from=start, date_to=end, actor="manage.py", via="command")
        chunks = [download.content.decode()] if isinstance(download.content, bytes) else download.content
        if options["output"] == "-":
            for chunk in chunks:
                sys.stdout.write(chunk)
            return
        written = 0
        # newline="": the CSV writer's own line endings (\r\n), byte for byte as the API sends them
        with open(options["output"], "w", encoding="utf-8", newline="") as out:
            for chunk in chunks:
                out.write(chunk)
                written += len(chunk)
        self.stderr.write(f"wrote {options['output']} ({fmt}, {written} characters)")
