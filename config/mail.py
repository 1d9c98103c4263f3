"""The development mail backend: Django's file backend, with files readable by their owner only and pruned.

Each file holds what the subject would receive: their address and, in a receipt, the secret status link (the
developer needs it to follow the link). So files are written 0600 and every write first deletes the files older
than EMAIL_FILE_RETENTION_HOURS; outside development the default backend is SMTP, never files (settings).
"""

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.mail.backends.filebased import EmailBackend


def mail_files_prune(*, directory: str | Path, older_than_seconds: float) -> int:
    """Deletes the mail files in directory last written more than older_than_seconds ago; returns how many."""
    cutoff = time.time() - older_than_seconds
    removed = 0
    for path in Path(directory).glob("*.log"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:  # pruned by a concurrent writer
            continue
    return removed


class PruningFileBackend(EmailBackend):
    def send_messages(self, email_messages: Sequence[Any]) -> int:
        hours = float(getattr(settings, "EMAIL_FILE_RETENTION_HOURS", 24.0))
        mail_files_prune(directory=self.file_path, older_than_seconds=hours * 3600)
        return super().send_messages(email_messages)

    def open(self) -> bool:
        opened = super().open()
        if opened:
            os.chmod(self._get_filename(), 0o600)  # before anything is written to it
        return opened
