"""The workflow sandbox the SDK's workflows run in, for workers and for replay alike."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from types import ModuleType

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


def sandbox_runner(passthrough: Sequence[str | ModuleType] = ()) -> SandboxedWorkflowRunner:
    """The sandboxed workflow runner with the SDK's passthrough modules and ``passthrough``.

    A module passed through (a name or the module; a package's name covers its submodules)
    is imported once per process instead of once per workflow run (its first workflow task, or
    a replay after the sticky cache let the instance go), and the sandbox no longer checks its
    code or what it imports: a clock read or random number there is not caught, and its module
    state is shared by every run. See ``docs/performance.md`` ("The sandbox") for what it
    saves and when it is safe. A name that is no module raises ``ValueError``.
    """
    names = _module_names(passthrough)
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*SANDBOX_PASSTHROUGH, *names)
    )


def _module_names(passthrough: Sequence[str | ModuleType]) -> list[str]:
    """The names of ``passthrough`` (names or modules), each one a module that exists."""
    if isinstance(passthrough, str | ModuleType):
        raise TypeError(f"passthrough must be a sequence of module names, not {passthrough!r}")
    names: list[str] = []
    for item in passthrough:
        name = item.__name__ if isinstance(item, ModuleType) else item
        if not isinstance(name, str):
            raise TypeError(f"passthrough names modules: {item!r} is not a module name")
        try:
            found = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            found = None
        if found is None:
            raise ValueError(f"passthrough: no module named {name!r}")
        names.append(name)
    return names
