"""The Celery application: broker from REDIS_URL, tasks discovered in the apps."""

import os
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("erasure")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def close_old_connections(**kwargs: Any) -> None:
    """What Django does around each web request, around each task: a connection that errored and no longer answers,
    or that is older than CONN_MAX_AGE, is closed (the next query opens a new one); a kept one is health-checked
    before its next use. Celery's own fixup would close it after every task (CELERY_DB_REUSE_MAX in the settings)."""
    from django.db import close_old_connections

    close_old_connections()
