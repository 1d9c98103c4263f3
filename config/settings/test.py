"""Test settings: the same real PostgreSQL and Redis, with names unique to this test run so that several runs
(and the Celery workers they start) never share a database, a queue or cache keys."""

import os

os.environ.setdefault("ERASURE_QUIET_DEV_KEY", "1")
os.environ.setdefault("DJANGO_ENV", "development")
_RUN = os.environ.setdefault("ERASURE_TEST_RUN", f"t{os.getpid()}")
os.environ.setdefault("CELERY_QUEUE", f"erasure-{_RUN}")
os.environ.setdefault("CELERY_KEY_PREFIX", f"{_RUN}:")
os.environ.setdefault("CACHE_KEY_PREFIX", f"erasure-{_RUN}")
os.environ.setdefault("VAR_DIR", f"/tmp/erasure-{_RUN}")

from .base import *  # noqa: E402,F403
from .base import DATABASES, VAR_DIR  # noqa: E402

DATABASES["default"]["TEST"] = {"NAME": os.environ.get("ERASURE_TEST_DB", f"test_erasure_{_RUN}")}
DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ.get("DATABASE_CONN_MAX_AGE") or 0)
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
EMAIL_FILE_PATH = str(VAR_DIR / "mail")
ALLOWED_HOSTS = ["*"]
