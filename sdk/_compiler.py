"""The compiler: one Temporal workflow class per ``@workflow`` definition.

The class is a module global of the author's module (the sandbox re-imports that module and
imports the class by name), named ``_dwf_<name>_<version>``. Its ``run`` method takes the
input as plain JSON values (``Any``), and the runtime validates them into the author's
parameter types (``sdk._inputs``): input that does not fit fails the workflow cleanly instead
of failing its workflow task forever.
"""

from __future__ import annotations

import inspect
import re
from typing import TYPE_CHECKING, Any

from temporalio import workflow

from ._workflow_base import DurableWorkflowBase

if TYPE_CHECKING:
    from ._definition import WorkflowDefinition

__all__ = ["compile_workflow", "workflow_class_name"]


def workflow_class_name(definition: WorkflowDefinition[..., Any]) -> str:
    """The generated class's module-global name."""
    return re.sub(r"\W", "_", f"_dwf_{definition.name}_{definition.version}")


def compile_workflow(definition: WorkflowDefinition[..., Any]) -> type:
    """Build, decorate and publish the Temporal workflow class of ``definition``."""
    cls_name = workflow_class_name(definition)
    module = definition.fn.__module__

    async def run(self: DurableWorkflowBase, *args: Any) -> Any:
        return await self._dwf.run(definition, args)

    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    names = list(inspect.signature(definition.fn).parameters)
    annotations: dict[str, Any] = {}
    for name in names:
        params.append(inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Any))
        annotations[name] = Any
    annotations["return"] = definition.return_type
    run.__signature__ = inspect.Signature(params, return_annotation=definition.return_type)  # type: ignore[attr-defined]
    run.__annotations__ = annotations
    run.__name__ = "run"
    run.__qualname__ = f"{cls_name}.run"
    run.__module__ = module

    namespace = {"run": workflow.run(run), "__module__": module, "__qualname__": cls_name}
    cls = type(cls_name, (DurableWorkflowBase,), namespace)
    cls.__doc__ = definition.description
    workflow.defn(name=definition.workflow_type)(cls)
    definition.fn.__globals__[cls_name] = cls
    return cls
