from django.apps import AppConfig


class ErasureConfig(AppConfig):
    name = "erasure"
    verbose_name = "Erasure requests"

    def ready(self) -> None:
        from . import (
            receivers,  # noqa: F401  (subscribes to deletion_job_finished: the path to `verified`)
            store_receivers,  # noqa: F401  (subscribes to the connected stores' store_job_finished)
        )
        from .api import schema  # noqa: F401  (OpenAPI extension for the API-key authentication)
        from .auditlog import auditlog_register

        auditlog_register()
