"""Settings read from the environment (CONTRACT.md "Environment"); safe defaults for a development machine."""

import os
import warnings
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


DEBUG = env_bool("DJANGO_DEBUG", False)
# "Development" is explicit: DJANGO_ENV=development (set by `make run`, the test settings and `make bench`) or
# DJANGO_DEBUG on. Everywhere else the service refuses to start without its secrets, and the mail default is SMTP.
DJANGO_ENV = os.environ.get("DJANGO_ENV", "production").strip().lower()
DEVELOPMENT = DEBUG or DJANGO_ENV == "development"

_DEV_SECRET = "dev-insecure-secret-key-change-me-0123456789abcdef0123456789"
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or ""
if not DEVELOPMENT:
    # The public development key would let anyone forge sessions and reverse pseudonyms by guessing ids.
    _missing = [name for name in ("DJANGO_SECRET_KEY", "PSEUDONYM_KEY") if not os.environ.get(name)]
    if _missing:
        raise ImproperlyConfigured(
            f"{' and '.join(_missing)} must be set outside development "
            "(or set DJANGO_ENV=development on a development machine)"
        )
if not SECRET_KEY:
    SECRET_KEY = _DEV_SECRET
    if not os.environ.get("ERASURE_QUIET_DEV_KEY"):
        warnings.warn("DJANGO_SECRET_KEY is not set: using the development key", stacklevel=1)
ALLOWED_HOSTS = [
    h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1").split(",") if h
]
PORT = env_int("PORT", 8000)

# Keyed hashes of subject identifiers (pseudonyms in proofs, suppression list). Separate from SECRET_KEY so the
# web secret can rotate without breaking the matching of later inquiries.
PSEUDONYM_KEY = os.environ.get("PSEUDONYM_KEY") or ("pseudonym:" + SECRET_KEY)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI / Redoc assets served locally: no CDN at run time
    "auditlog",
    "axes",
    "memories",
    "erasure",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.SecurityHeadersMiddleware",
    "config.middleware.StatementTimeoutMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "auditlog.middleware.AuditlogMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks
]

# Web requests only (config/middleware.py): a statement running longer is cancelled and the request answers 503.
# Celery workers and management commands never run middleware, so they keep PostgreSQL's default (no limit).
WEB_STATEMENT_TIMEOUT_MS = env_int("WEB_STATEMENT_TIMEOUT_MS", 5000)
# At most this many list/search queries at once across the web tier (memories/api/slots.py; 0: no bound): a
# burst of costly filters cannot take every core from the erasure workers. One per two cores by default; a
# request finding them taken waits up to WEB_FILTER_QUERY_WAIT_MS, then answers 503 with Retry-After.
WEB_FILTER_QUERY_SLOTS = env_int("WEB_FILTER_QUERY_SLOTS", max(1, (os.cpu_count() or 2) // 2))
WEB_FILTER_QUERY_WAIT_MS = env_int("WEB_FILTER_QUERY_WAIT_MS", WEB_STATEMENT_TIMEOUT_MS)

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@localhost:5432/erasure")
# Connections are kept for DATABASE_CONN_MAX_AGE seconds (and checked before reuse), by web requests and by the
# Celery worker's tasks alike (config/celery.py).
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60), conn_health_checks=True
    )
}
DATABASES["default"].setdefault("OPTIONS", {})
DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", 5)
DATABASES["default"]["OPTIONS"].setdefault("application_name", "erasure")
# No JIT compilation: this service's queries are short, and with statistics that lag behind a large delete the
# planner's cost estimates cross jit_above_cost often enough to add a compilation that costs more than the query.
DATABASES["default"]["OPTIONS"].setdefault("options", "-c jit=off")
# Prepared statements on: only the deletion engine's batch statement asks for one (memories/engine.py; Django's own
# queries bind on the client and are never prepared). Django turns them off by default for the sake of connection
# poolers in transaction mode; behind such a pooler (PgBouncer before 1.21), set DATABASE_PREPARED_STATEMENTS=0.
DATABASES["default"]["OPTIONS"].setdefault(
    "prepare_threshold", 1_000_000 if env_int("DATABASE_PREPARED_STATEMENTS", 1) else None
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
CACHE_KEY_PREFIX = os.environ.get("CACHE_KEY_PREFIX", "erasure")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": CACHE_KEY_PREFIX,
        "TIMEOUT": 300,
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses a locked-out account or address before checking a password
    "django.contrib.auth.backends.ModelBackend",
]
# Staff sign-in (console and /admin/) locks after AXES_FAILURE_LIMIT failures per account and, separately, per
# address, for AXES_COOLOFF_MINUTES; a success resets the account's count.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_IPWARE_PROXY_COUNT = env_int("AXES_PROXY_COUNT", 0)
AXES_VERBOSE = False
# Sessions are only the privacy team's (console and admin): a working day at most, and gone with the browser.
SESSION_COOKIE_AGE = env_int("STAFF_SESSION_SECONDS", 8 * 3600)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
LOGIN_URL = "/privacy-team/login/"
LOGIN_REDIRECT_URL = "/privacy-team/"

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# HTTPS (DJANGO_HTTPS=1 when the service is reached over HTTPS): Secure cookies, HSTS and a redirect to HTTPS.
# Behind a proxy that terminates TLS and sets X-Forwarded-Proto (and strips it from clients), also set
# DJANGO_PROXY_SSL_HEADER=1.
HTTPS = env_bool("DJANGO_HTTPS", False)
if env_bool("DJANGO_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", HTTPS)
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", HTTPS)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", HTTPS)  # the directive only; listing is a separate act
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# On every response (config/middleware.py). Pages carry no inline script or style and no third-party asset
# (tests/test_security_settings.py checks the templates); the API docs use drf-spectacular's split view for this.
CONTENT_SECURITY_POLICY = os.environ.get(
    "CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
)
# Pages that show personal data are never stored by a browser or proxy cache.
NO_STORE_PATH_PREFIXES = ("/privacy-team/", "/privacy/status/", "/admin/")

# E-mail: EMAIL_URL (smtp://user:pass@host:port) or Django's EMAIL_*. Without them: in development, files in
# var/mail/ (each mail holds the subject's address and secret status link, which a developer needs to follow; the
# backend deletes files older than EMAIL_FILE_RETENTION_HOURS and writes them readable by the owner only);
# outside development, SMTP to localhost:25 (the host's relay), never files.
EMAIL_URL = os.environ.get("EMAIL_URL", "")
if EMAIL_URL:
    from urllib.parse import unquote, urlparse

    _mail = urlparse(EMAIL_URL)
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = _mail.hostname or "localhost"
    EMAIL_PORT = _mail.port or 25
    EMAIL_HOST_USER = unquote(_mail.username or "")
    EMAIL_HOST_PASSWORD = unquote(_mail.password or "")
    EMAIL_USE_TLS = _mail.scheme in {"smtp+tls", "submission"}
    EMAIL_USE_SSL = _mail.scheme == "smtps"
else:
    EMAIL_BACKEND = os.environ.get(
        "EMAIL_BACKEND",
        "config.mail.PruningFileBackend" if DEVELOPMENT else "django.core.mail.backends.smtp.EmailBackend",
    )
    EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
EMAIL_FILE_RETENTION_HOURS = env_float("EMAIL_FILE_RETENTION_HOURS", 24.0)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "privacy@localhost")
SITE_URL = os.environ.get("SITE_URL", f"http://localhost:{PORT}")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["memories.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["memories.auth.HasApiKey"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["config.parsers.SafeJSONParser"],
    "EXCEPTION_HANDLER": "memories.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_RATES": {"subject_form": os.environ.get("SUBJECT_FORM_RATE", "20/hour")},
    # How many reverse proxies in front of the app append to X-Forwarded-For: throttles key on the address the
    # last of them saw. 0 (the default) trusts no header and uses REMOTE_ADDR.
    "NUM_PROXIES": env_int("TRUSTED_PROXY_COUNT", 0),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Erasure workflow service",
    "DESCRIPTION": "Mem0-compatible memory store and GDPR/CCPA erasure-request workflow.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.schema.add_common_answers",
    ],
    "ENUM_NAME_OVERRIDES": {
        "RejectionReasonEnum": "erasure.models.RejectionReason",
        "LegalHoldReasonEnum": "memories.models.LegalHold.Reason",
    },
}

# Celery: Redis broker; job state lives in PostgreSQL, so no result backend.
CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_IGNORE_RESULT = True
# Celery's Django fixup closes the worker's database connection before and after every task unless this is set; it
# then closes it every 2 × this many task calls. Between those, connections follow CONN_MAX_AGE and the health
# check like a web request's (config/celery.py): a task does not pay for a new PostgreSQL session (its set-up, cold
# catalog caches and the loss of the batch statement's prepared plan).
CELERY_DB_REUSE_MAX = 1000
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_QUEUE", "erasure")
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 600),
    "global_keyprefix": os.environ.get("CELERY_KEY_PREFIX", ""),
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = "UTC"

# The deletion engine (memories/engine.py).
DELETION_BATCH_SIZE = env_int("DELETION_BATCH_SIZE", 10000)
DELETION_TASK_BUDGET_SECONDS = env_float("DELETION_TASK_BUDGET_SECONDS", 20.0)
# A job whose scope holds more than one batch deletes its first pass in this many lanes at once
# (threads of the worker process, one database connection each); 1 turns lanes off.
DELETION_LANES = env_int("DELETION_LANES", 2)
DELETION_STALE_SECONDS = env_float("DELETION_STALE_SECONDS", 60.0)
# Verify an erasure request in the worker task whose deletion job just finished (no separate task hop).
ERASURE_VERIFY_INLINE = env_bool("ERASURE_VERIFY_INLINE", True)
# Four-eyes approval: the staff member (or API key) who approves an erasure must differ from the one who scoped it.
APPROVAL_REQUIRES_SECOND_STAFF = env_bool("APPROVAL_REQUIRES_SECOND_STAFF", False)
# A straggler pass looks at ids generated from this long before the job started on (clock skew between app
# servers, transactions that were open when it started): memories/engine.py.
DELETION_STRAGGLER_MARGIN_SECONDS = env_float("DELETION_STRAGGLER_MARGIN_SECONDS", 300.0)
DELETION_TASK_MAX_RETRIES = env_int("DELETION_TASK_MAX_RETRIES", 8)
DELETION_SWEEP_SECONDS = env_float("DELETION_SWEEP_SECONDS", 30.0)
# Batches write their DELETE events (tombstones) unindexed; this often the beat adds them to the GIN index that
# GET /v1/memories/{id}/history/ of a deleted memory uses (until then that lookup reads them directly).
DELETION_TOMBSTONE_INDEX_SECONDS = env_float("DELETION_TOMBSTONE_INDEX_SECONDS", 5.0)
EXPIRY_SWEEP_SECONDS = env_float("EXPIRY_SWEEP_SECONDS", 3600.0)

CELERY_BEAT_SCHEDULE = {
    "deletion-jobs-resume-stale": {
        "task": "memories.tasks.deletion_jobs_resume_stale_task",
        "schedule": timedelta(seconds=DELETION_SWEEP_SECONDS),
    },
    "erasure-requests-resume-stale": {
        "task": "erasure.tasks.erasure_requests_resume_stale_task",
        "schedule": timedelta(seconds=DELETION_SWEEP_SECONDS),
    },
    "memories-tombstones-merge": {
        "task": "memories.tasks.memories_tombstones_merge_task",
        "schedule": timedelta(seconds=DELETION_TOMBSTONE_INDEX_SECONDS),
    },
    "memories-purge-expired": {
        "task": "memories.tasks.memories_purge_expired_task",
        "schedule": timedelta(seconds=EXPIRY_SWEEP_SECONDS),
    },
}

# Compliance operations (erasure/retention.py, erasure/privacy.py): memory retention policies run every
# RETENTION_INTERVAL_SECONDS; closed requests are pseudonymised CLOSED_REQUEST_PII_DAYS after closing and their
# records purged REQUEST_RETENTION_MONTHS after closing (CCPA §7101 keeps them 24 months).
RETENTION_INTERVAL_SECONDS = env_float("RETENTION_INTERVAL_SECONDS", 3600.0)
CLOSED_REQUEST_PII_DAYS = env_int("CLOSED_REQUEST_PII_DAYS", 30)
REQUEST_RETENTION_MONTHS = env_int("REQUEST_RETENTION_MONTHS", 24)
CLOSED_REQUEST_SWEEP_SECONDS = env_float("CLOSED_REQUEST_SWEEP_SECONDS", 3600.0)
CELERY_BEAT_SCHEDULE["retention-policies-run-due"] = {
    "task": "erasure.tasks.retention_policies_run_due_task",
    "schedule": timedelta(seconds=RETENTION_INTERVAL_SECONDS),
}
CELERY_BEAT_SCHEDULE["closed-requests-sweep"] = {
    "task": "erasure.tasks.closed_requests_sweep_task",
    "schedule": timedelta(seconds=CLOSED_REQUEST_SWEEP_SECONDS),
}

# Logging: JSON lines on stderr; ids and counts only (STYLE.md rule 5). Request paths are redacted because
# entity paths (/v2/entities/user/<name>/) and query strings carry subject identifiers.
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "config.logging.RedactPersonalDataFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "ts", "levelname": "level", "name": "logger"},
        }
    },
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["redact"],
        }
    },
    "root": {"handlers": ["stderr"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING"},
        "celery": {"level": "INFO"},
    },
}

# Deletion certificates (erasure/certificate.py, erasure/signing.py). The Ed25519 private key comes from
# CERTIFICATE_SIGNING_KEY (PEM text) or CERTIFICATE_SIGNING_KEY_FILE; only in development (the dev secret key or
# DEBUG) is one generated into VAR_DIR/signing-key.pem. The residual windows stated on every certificate are the
# operator's real backup and WAL retention: set them to match the database's backup policy.
CERTIFICATE_SIGNING_KEY = os.environ.get("CERTIFICATE_SIGNING_KEY", "")
CERTIFICATE_SIGNING_KEY_FILE = os.environ.get("CERTIFICATE_SIGNING_KEY_FILE", "")
# Key rotation: the keys used before the current one (PEM text with one or more keys, and/or a PEM bundle file or a
# directory of *.pem), published beside it so that older certificates still verify (erasure/signing.py).
CERTIFICATE_SIGNING_KEY_PREVIOUS = os.environ.get("CERTIFICATE_SIGNING_KEY_PREVIOUS", "")
CERTIFICATE_SIGNING_KEY_PREVIOUS_FILE = os.environ.get("CERTIFICATE_SIGNING_KEY_PREVIOUS_FILE", "")
CERTIFICATE_SIGNING_KEY_AUTOGENERATE = env_bool(
    "CERTIFICATE_SIGNING_KEY_AUTOGENERATE", DEBUG or SECRET_KEY == _DEV_SECRET
)
CERTIFICATE_ISSUER = os.environ.get("CERTIFICATE_ISSUER", "Erasure workflow service")
BACKUP_RETENTION_DAYS = env_int("BACKUP_RETENTION_DAYS", 30)
WAL_RETENTION_DAYS = env_int("WAL_RETENTION_DAYS", 7)

# Data subjects (erasure/identity.py, erasure/notices.py) and the Data Rights Protocol (erasure/drp/).
# PRIVACY_TEAM_EMAILS: comma-separated addresses of the privacy team's alerts; empty means alerts are only recorded
# (and shown in the console). IDENTITY_RESOLVER: optional dotted path of a function verified e-mail -> list of the
# user ids the company's account system knows for it. DRP_BUSINESS_ID: our id in the DRP network.
PRIVACY_TEAM_EMAILS = [a.strip() for a in os.environ.get("PRIVACY_TEAM_EMAILS", "").split(",") if a.strip()]
IDENTITY_RESOLVER = os.environ.get("IDENTITY_RESOLVER", "")
IDENTITY_LINK_MAX_AGE_SECONDS = env_int("IDENTITY_LINK_MAX_AGE_SECONDS", 72 * 3600)
DRP_BUSINESS_ID = os.environ.get("DRP_BUSINESS_ID", "")
DRP_CALLBACK_RETRY_BASE_SECONDS = env_float("DRP_CALLBACK_RETRY_BASE_SECONDS", 30.0)  # doubles up to an hour
from celery.schedules import crontab  # noqa: E402

CELERY_BEAT_SCHEDULE.update(
    {
        "subject-notices-resume": {
            "task": "erasure.notices_tasks.notices_resume_task",
            "schedule": timedelta(minutes=5),
        },
        "staff-alerts-sweep": {
            "task": "erasure.notices_tasks.staff_alerts_sweep_task",
            "schedule": timedelta(hours=1),
        },
        "staff-alerts-digest": {
            "task": "erasure.notices_tasks.staff_alerts_digest_task",
            "schedule": crontab(hour=env_int("STAFF_DIGEST_HOUR_UTC", 7), minute=0),
        },
        "drp-verifications-expire": {
            "task": "erasure.drp.tasks.drp_verifications_expire_task",
            "schedule": timedelta(hours=1),
        },
        "drp-callbacks-resume": {
            "task": "erasure.drp.tasks.drp_callbacks_resume_task",
            "schedule": timedelta(minutes=10),
        },
    }
)
