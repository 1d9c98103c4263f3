"""`manage.py verify_certificate FILE [--public-key PEM]`: checks a certificate's signature offline (no database)."""

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from erasure.certificate import certificate_authenticate
from erasure.signing import SignatureInvalid


class Command(BaseCommand):
    help = "Checks a deletion certificate's Ed25519 signature, with the embedded or the given public key."
    requires_system_checks: list[str] = []  # offline: nothing here may need the database

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="the certificate JSON document")
        parser.add_argument("--public-key", help="PEM file of the published public key (recommended)")

    def fail(self, reason: str) -> None:
        self.stderr.write(f"certificate invalid: {reason}")
        sys.exit(1)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            document = json.loads(Path(options["file"]).read_bytes())
        except OSError as exc:
            return self.fail(f"cannot read {options['file']}: {exc.strerror}")
        except ValueError:
            return self.fail("the file is not JSON")
        pem = None
        if options["public_key"]:
            try:
                pem = Path(options["public_key"]).read_bytes()
            except OSError as exc:
                return self.fail(f"cannot read {options['public_key']}: {exc.strerror}")
        try:
            reference = certificate_authenticate(document, pem)
        except SignatureInvalid as exc:
            return self.fail(str(exc))
        self.stdout.write(f"certificate valid: {reference}")
        if pem is None:
            self.stdout.write(
                f"checked with the embedded public key (key id {document.get('key_id')}); compare the key id with "
                "the one the issuer publishes, or pass --public-key"
            )
