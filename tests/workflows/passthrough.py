"""A workflow that tells which copy of its module runs it (``sandbox_passthrough``).

The sandbox imports a workflow's module again for every workflow run, so ``SEEN`` inside a run
is a new list, unless the worker passes the module through
(``create_worker(sandbox_passthrough=[__name__])``): then every run appends to this process's
own list. That shared state is what a module passed through must not have (it would differ on
replay): here it only shows which copy ran.
"""

from __future__ import annotations

from sdk import workflow

SEEN: list[str] = []
"""The labels of the runs that saw this copy of the module."""


@workflow(name="tests.module_copy")
async def module_copy(label: str) -> int:
    """Append ``label`` to the ``SEEN`` this run sees; how many it then holds."""
    SEEN.append(label)
    return len(SEEN)


WORKFLOWS = (module_copy,)
