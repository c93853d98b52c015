"""The worker: runs durable-workflows definitions on a Temporal task queue."""

from ._build import SANDBOX_PASSTHROUGH, create_worker, sandbox_runner, worker_components
from ._health import HealthServer
from ._process import WorkerProcess, configure_logging, import_app, run_worker
from ._settings import ConfigurationError, WorkerSettings, add_worker_arguments

__all__ = ["SANDBOX_PASSTHROUGH", "create_worker", "sandbox_runner", "worker_components"]
__all__ += [
    # The long-lived process (python -m worker, dwf worker)
    "ConfigurationError",
    "HealthServer",
    "WorkerProcess",
    "WorkerSettings",
    "add_worker_arguments",
    "configure_logging",
    "import_app",
    "run_worker",
]
