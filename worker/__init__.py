"""The worker: runs durable-workflows definitions on a Temporal task queue."""

from ._build import SANDBOX_PASSTHROUGH, create_worker, sandbox_runner, worker_components

__all__ = ["SANDBOX_PASSTHROUGH", "create_worker", "sandbox_runner", "worker_components"]
