"""`manage.py verify_certificate FILE [--public-key PEM]`: checks a certificate offline (no database) against the
issuer's published keys: those in --public-key (a PEM file or bundle, e.g. from /.well-known/erasure-signing-key or
`export_public_key --all`), or else the keys this installation is configured with (current and previous).

Exit 0 "certificate valid: REF"; exit 1 "certificate invalid: …" (tampered, malformed, unreadable); exit 2
"signature valid but signed by an unknown key" (consistent with its own embedded key, which the issuer never
published: anyone can re-sign altered facts with a key of their own).
"""

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from erasure.certificate import UnknownSigningKey, certificate_check_trusted
from erasure.signing import SignatureInvalid, load_public_keys, trusted_public_keys

EXIT_INVALID = 1
EXIT_UNKNOWN_KEY = 2


class Command(BaseCommand):
    help = (
        "Checks a deletion certificate's Ed25519 signature against the issuer's published keys "
        "(--public-key FILE, or this installation's configured keys)."
    )
    requires_system_checks: list[str] = []  # offline: nothing here may need the database

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="the certificate JSON document")
        parser.add_argument(
            "--public-key",
            help="PEM file with the issuer's published public key(s); default: this installation's keys",
        )

    def fail(self, reason: str, code: int = EXIT_INVALID) -> None:
        self.stderr.write(reason if code == EXIT_UNKNOWN_KEY else f"certificate invalid: {reason}")
        sys.exit(code)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            document = json.loads(Path(options["file"]).read_bytes())
        except OSError as exc:
            return self.fail(f"cannot read {options['file']}: {exc.strerror}")
        except ValueError:
            return self.fail("the file is not JSON")
        if options["public_key"]:
            try:
                trusted = load_public_keys(Path(options["public_key"]).read_bytes())
            except OSError as exc:
                return self.fail(f"cannot read {options['public_key']}: {exc.strerror}")
            except SignatureInvalid as exc:
                return self.fail(f"{options['public_key']}: {exc}")
            source = options["public_key"]
        else:
            trusted = trusted_public_keys(generate=False)
            if not trusted:
                return self.fail(
                    "no trusted key: pass --public-key FILE with the issuer's published key "
                    "(GET /.well-known/erasure-signing-key or manage.py export_public_key --all)"
                )
            source = "this installation's signing keys"
        try:
            reference = certificate_check_trusted(document, trusted)
        except UnknownSigningKey as exc:
            return self.fail(f"{exc}; trusted keys: {source}", EXIT_UNKNOWN_KEY)
        except SignatureInvalid as exc:
            return self.fail(str(exc))
        self.stdout.write(f"certificate valid: {reference}")
        self.stdout.write(f"signed by key {document['certificate']['key_id']} ({source})")
