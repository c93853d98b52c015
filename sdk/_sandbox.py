"""The workflow sandbox the SDK's workflows run in, for workers and for replay alike."""

from __future__ import annotations

from collections.abc import Sequence

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

__all__ = ["SANDBOX_PASSTHROUGH", "sandbox_runner"]

SANDBOX_PASSTHROUGH = (
    "sdk",
    "sqlalchemy",
    "asyncpg",
    "aiosqlite",
    "alembic",
    "prometheus_client",
    "cryptography",
)
"""Modules imported once, outside the sandbox, instead of again for every workflow run.

``sdk`` is deterministic, sandbox-safe code (its decorators register nothing when a module is
re-imported inside the sandbox); the database drivers are never used by workflow code.
``cryptography`` verifies signed commands in update validators: its Rust extension can be
initialised once per process only, so a re-import inside the sandbox would abort the worker.
"""


def sandbox_runner(passthrough: Sequence[str] = ()) -> SandboxedWorkflowRunner:
    """The sandboxed workflow runner with the SDK's passthrough modules and ``passthrough``.

    A module passed through is imported once per process instead of once per workflow run
    (its first workflow task, or a replay after the sticky cache let the instance go), and the
    sandbox no longer checks its code: a clock read or random number in it is not caught. See
    ``docs/performance.md`` ("The sandbox") for what it saves and when it is safe.
    """
    if isinstance(passthrough, str):
        raise TypeError(f"passthrough must be a sequence of module names, not the string {passthrough!r}")
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*SANDBOX_PASSTHROUGH, *passthrough)
    )
