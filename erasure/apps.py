from django.apps import AppConfig


class ErasureConfig(AppConfig):
    name = "erasure"
    verbose_name = "Erasure requests"

    def ready(self) -> None:
        # both subscribe to deletion_job_finished: the path to `verified`, and retention runs following their jobs
        from . import receivers, retention  # noqa: F401
        from .api import schema  # noqa: F401  (OpenAPI extension for the API-key authentication)
        from .auditlog import auditlog_register

        auditlog_register()
