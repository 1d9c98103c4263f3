from django.apps import AppConfig


class ErasureConfig(AppConfig):
    name = "erasure"
    verbose_name = "Erasure requests"

    def ready(self) -> None:
        # receivers: deletion_job_finished, the path to `verified`; store_receivers: the connected stores'
        # store_job_finished; retention: retention runs following their jobs; notices_tasks: mail outbox tasks
        from . import notices_tasks, receivers, retention, store_receivers  # noqa: F401
        from .api import schema  # noqa: F401  (OpenAPI extension for the API-key authentication)
        from .auditlog import auditlog_register
        from .drp import tasks as drp_tasks  # noqa: F401  (registers the DRP callback tasks)

        auditlog_register()
