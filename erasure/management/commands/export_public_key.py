"""`manage.py export_public_key`: prints the certificate signing public key (PEM) and its key id, for auditors."""

from typing import Any

from django.core.management.base import BaseCommand

from erasure.signing import key_id, public_key_pem


class Command(BaseCommand):
    help = (
        "Prints the public key that verifies deletion certificates, and its key id (sha256 of the raw key)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(public_key_pem(), ending="")
        self.stderr.write(f"key id: {key_id()}")
