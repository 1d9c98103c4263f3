from django.apps import AppConfig


class ErasureConfig(AppConfig):
    name = "erasure"
    verbose_name = "Erasure requests"

    def ready(self) -> None:
        from . import notices_tasks, receivers  # noqa: F401  (receivers subscribe to deletion_job_finished)
        from .api import schema  # noqa: F401  (OpenAPI extension for the API-key authentication)
        from .auditlog import auditlog_register
        from .drp import tasks as drp_tasks  # noqa: F401  (registers the DRP callback tasks)

        auditlog_register()
