"""The microservice's tasks, one module per family as in the seed's ``tasks/``.

Importing this package registers all fifteen (``CONVEYOR_IMPORTS=examples.microservice.tasks``).
"""

from examples.microservice.tasks import (
    cleanup_tasks,
    data_processing_tasks,
    email_tasks,
    notification_tasks,
)

__all__ = ["cleanup_tasks", "data_processing_tasks", "email_tasks", "notification_tasks"]
