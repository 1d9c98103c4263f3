"""Ensures a demo staff user and a demo staff API key for `make run`; prints them once, when created.

The raw values are also written to var/demo-credentials.txt (mode 600, git-ignored) so a developer who missed
the first print can find them; only hashes are in the database."""

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from memories.models import ApiKey
from memories.services import api_key_create

DEMO_USER = "privacy"
DEMO_KEY_NAME = "demo"


class Command(BaseCommand):
    help = "Create the demo staff user and API key if missing."

    def handle(self, *args, **options):
        path = Path(settings.VAR_DIR) / "demo-credentials.txt"
        lines = []
        User = get_user_model()
        if not User.objects.filter(username=DEMO_USER).exists():
            password = secrets.token_urlsafe(12)
            User.objects.create_user(DEMO_USER, password=password, is_staff=True, is_superuser=True)
            lines.append(f"staff login:   {DEMO_USER} / {password}")
        if not ApiKey.objects.active().filter(name=DEMO_KEY_NAME).exists():
            _key, raw = api_key_create(name=DEMO_KEY_NAME, is_staff=True)
            lines.append(f"demo API key:  {raw}   (staff: memory API and Erasure API)")
        if lines:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a") as fh:
                fh.write("\n".join(lines) + "\n")
            os.chmod(path, 0o600)
            self.stdout.write("\n".join(lines))
        else:
            self.stdout.write(f"demo user and API key exist (created earlier; see {path})")
