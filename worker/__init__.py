"""The worker: runs durable-workflows definitions on a Temporal task queue."""

from ._build import SANDBOX_PASSTHROUGH, create_worker, sandbox_runner, worker_components
from ._failing import FailingTask, FailingWorkflowTasks
from ._health import HealthServer
from ._logging import configure_logging
from ._process import WorkerProcess, import_app, run_worker
from ._settings import (
    OPTIONS,
    ConfigurationError,
    SettingOption,
    WorkerSettings,
    add_worker_arguments,
    settings_from,
)

__all__ = ["SANDBOX_PASSTHROUGH", "create_worker", "sandbox_runner", "worker_components"]
__all__ += [
    # Instances whose workflow task keeps failing (create_worker(failing_tasks=...))
    "FailingTask",
    "FailingWorkflowTasks",
]
__all__ += [
    # The long-lived process (python -m worker, dwf worker)
    "ConfigurationError",
    "HealthServer",
    "OPTIONS",
    "SettingOption",
    "WorkerProcess",
    "WorkerSettings",
    "add_worker_arguments",
    "configure_logging",
    "import_app",
    "run_worker",
    "settings_from",
]
