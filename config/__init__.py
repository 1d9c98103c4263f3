"""Project configuration: settings, URLs, the Celery app. No domain code lives here."""

from .celery import app as celery_app

__all__ = ["celery_app"]
