"""Machine steps as Temporal activities."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from temporalio import activity

from sdk import MachineStep

__all__ = ["machine_step_activity"]


def machine_step_activity(step: MachineStep[..., Any]) -> Callable[..., Any]:
    """The activity function that runs ``step``: the author's function under the step's name.

    A thin wrapper keeps the author's function untouched (it stays a plain async function)
    while carrying its signature and resolved types, so the converter decodes arguments into
    the declared models.
    """
    fn = step.fn

    async def run_step(*args: Any) -> Any:
        return await fn(*args)

    params = list(inspect.signature(fn).parameters.values())
    run_step.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [p.replace(annotation=t) for p, t in zip(params, step.param_types, strict=True)],
        return_annotation=step.return_type,
    )
    run_step.__annotations__ = {p.name: t for p, t in zip(params, step.param_types, strict=True)}
    run_step.__annotations__["return"] = step.return_type
    run_step.__name__ = fn.__name__
    run_step.__qualname__ = fn.__qualname__
    run_step.__module__ = fn.__module__
    return activity.defn(name=step.name)(run_step)
