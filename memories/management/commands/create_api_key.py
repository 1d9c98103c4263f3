"""python manage.py create_api_key --name NAME [--staff]: prints a new key once; only its hash is stored."""

from django.core.management.base import BaseCommand

from memories.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key and print it once."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--staff", action="store_true", help="privacy-team key (may use the Erasure API)")

    def handle(self, *args, name, staff, **options):
        _key, raw = api_key_create(name=name, is_staff=staff)
        self.stdout.write(raw)
