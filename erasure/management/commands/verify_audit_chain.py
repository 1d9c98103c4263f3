"""`manage.py verify_audit_chain`: exit 0 "audit chain intact: N entries", or exit 1 naming the first broken entry."""

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from erasure.audit import audit_chain_recompute


class Command(BaseCommand):
    help = "Recomputes the audit hash chain (streaming) and checks the django-auditlog rows it covers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--chunk-size", type=int, default=2000, help="rows fetched per round trip")

    def handle(self, *args: Any, **options: Any) -> None:
        report = audit_chain_recompute(chunk_size=max(1, options["chunk_size"]))
        if report.ok:
            self.stdout.write(f"audit chain intact: {report.entries} entries")
            return
        where = f"entry {report.broken_id}" if report.broken_id is not None else "the chain"
        self.stderr.write(
            f"audit chain broken at {where}: {report.reason} ({report.entries} entries intact before it)"
        )
        sys.exit(1)
