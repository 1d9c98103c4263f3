"""`manage.py export_public_key [--all]`: prints the certificate signing public key (PEM) and its key id, for
auditors; with --all, every published key (the current one and those kept from before a key rotation)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from erasure.signing import published_keys


class Command(BaseCommand):
    help = (
        "Prints the public key that verifies deletion certificates, and its key id (sha256 of the raw key); "
        "--all prints every published key as one PEM bundle (what verify_certificate --public-key takes)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--all", action="store_true", help="also the keys used before a rotation")

    def handle(self, *args: Any, **options: Any) -> None:
        keys = published_keys()
        for key in keys if options["all"] else keys[:1]:
            self.stdout.write(key["public_key"], ending="")
            self.stderr.write(f"key id: {key['key_id']}{' (current)' if key['current'] else ''}")
