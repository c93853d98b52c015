"""The compiler: one Temporal workflow class per ``@workflow`` definition.

The class is a module global of the author's module (the sandbox re-imports that module and
imports the class by name), named ``_dwf_<name>_<version>``. Its ``run`` method takes the
input as plain JSON values (``Any``), and the runtime validates them into the author's
parameter types (``sdk._inputs``): input that does not fit fails the workflow cleanly instead
of failing its workflow task forever.
"""

from __future__ import annotations

import dataclasses
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
    _define(cls, definition.workflow_type)
    definition.fn.__globals__[cls_name] = cls
    return cls


_template: Any = None
"""The temporalio definition of the first class compiled in this process.

Every compiled class is ``DurableWorkflowBase`` plus a ``run`` method, so they all have the same
signal, query and update handlers: the functions of ``DurableWorkflowBase`` itself, one object
inside and outside the sandbox (``sdk`` passes through it). ``workflow.defn`` inspects every
member of the class to find them (a few milliseconds per class), and the sandbox re-imports the
author's module, compiling each of its workflows again, for every workflow run it creates (the
first activation, or a replay after the sticky cache let the instance go). The classes after
the first copy its handlers and options and get their own name, class, run method and run
types; ``tests/unit/test_definitions.py`` compares the copy with what ``workflow.defn`` builds."""

_FIELDS = frozenset(
    {
        "name",
        "cls",
        "run_fn",
        "signals",
        "queries",
        "updates",
        "sandboxed",
        "failure_exception_types",
        "arg_types",
        "ret_type",
        "versioning_behavior",
        "dynamic_config_fn",
    }
)
"""The fields of temporalio's workflow definition this module knows: a copy is made only while
they are exactly these (a temporalio upgrade that adds one falls back to ``workflow.defn``)."""


def _define(cls: type, name: str) -> None:
    """``workflow.defn(name=name)(cls)``, the handlers taken from the first class's definition."""
    global _template
    template = _template
    if template is None or not _reusable(template, cls):
        workflow.defn(name=name)(cls)
        _template = workflow._Definition.must_from_class(cls)
        return
    run = cls.__dict__["run"]
    # arg_types and ret_type None: the definition reads them off ``run``'s hints, as defn does.
    defn = dataclasses.replace(template, name=name, cls=cls, run_fn=run, arg_types=None, ret_type=None)
    setattr(cls, "__temporal_workflow_definition", defn)
    setattr(run, "__temporal_workflow_definition", defn)


def _reusable(template: Any, cls: type) -> bool:
    """Whether ``cls`` may copy ``template``: both compiled classes of this module (only
    ``DurableWorkflowBase`` and a ``run``), and the definition's fields the ones known here."""
    if not dataclasses.is_dataclass(template) or {f.name for f in dataclasses.fields(template)} != _FIELDS:
        return False
    compiled: tuple[type, type] = (getattr(template, "cls", object), cls)
    return all(
        c.__bases__ == (DurableWorkflowBase,) and {k for k in vars(c) if not k.startswith("__")} == {"run"}
        for c in compiled
    )
