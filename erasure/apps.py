from django.apps import AppConfig


class ErasureConfig(AppConfig):
    name = "erasure"
    verbose_name = "Erasure requests"

    def ready(self) -> None:
        # receivers and retention subscribe to memories' deletion_job_finished (requests and retention runs)
        from . import receivers, retention  # noqa: F401
        from .api import schema  # noqa: F401  (OpenAPI extension for the API-key authentication)
        from .auditlog import auditlog_register

        auditlog_register()
