"""Mermaid diagrams of definitions, and of instances coloured by their steps' status.

:func:`mermaid` draws a graph definition (every step and edge, conditions as edge labels) or
a code-first ``@workflow`` (its steps in the order its code names them). Given the statuses of
an instance's steps (``step_name -> status`` from the mirror), each step is coloured by its
status. Pure: no I/O (``sdk.mirror.instance_diagram`` reads an instance's statuses).
"""

from __future__ import annotations

import dis
import re
from collections.abc import Mapping
from typing import Any

from ._definition import HumanStep, MachineStep, WorkflowDefinition
from ._graph_model import GraphDefinition
from ._graph_run import mirror_step_name

__all__ = ["STATUS_STYLES", "mermaid"]

STATUS_STYLES = {
    "SUCCEEDED": "fill:#c8e6c9,stroke:#2e7d32",
    "RUNNING": "fill:#bbdefb,stroke:#1565c0",
    "WAITING": "fill:#fff9c4,stroke:#f9a825",
    "PENDING": "fill:#eeeeee,stroke:#9e9e9e",
    "SCHEDULED": "fill:#eeeeee,stroke:#9e9e9e",
    "FAILED": "fill:#ffcdd2,stroke:#c62828",
    "SKIPPED": "fill:#f5f5f5,stroke:#bdbdbd,stroke-dasharray:4 4,color:#9e9e9e",
    "CANCELED": "fill:#e0e0e0,stroke:#616161",
}
"""Mermaid ``classDef`` style of each step status."""

_SHAPES = {
    "machine": ('["', '"]'),
    "human": ('[/"', '"/]'),
    "exclusive": ('{"', '"}'),
    "parallel": ('{{"', '"}}'),
    "join": ('{{"', '"}}'),
    "timer": ('(["', '"])'),
    "event": ('>"', '"]'),
    "subworkflow": ('[["', '"]]'),
}


def _text(value: str) -> str:
    return value.replace('"', "#quot;").replace("\n", " ")


def _node(value: str) -> str:
    return "n_" + re.sub(r"\W", "_", value)


def mermaid(
    definition: GraphDefinition | WorkflowDefinition[..., Any], statuses: Mapping[str, str] | None = None
) -> str:
    """The Mermaid flowchart of ``definition``; with ``statuses``, steps coloured by status.

    Args:
        definition: A graph definition or a ``@workflow`` definition.
        statuses: ``step_name -> status`` (``workflow_step_executions``), e.g. from the mirror.
    """
    if isinstance(definition, GraphDefinition):
        lines, names = _graph(definition)
    else:
        lines, names = _code(definition)
    if statuses:
        used: set[str] = set()
        for node, name in names.items():
            status = statuses.get(name)
            if status in STATUS_STYLES:
                lines.append(f"    class {node} {status.lower()}")
                used.add(status)
        for status in sorted(used):
            lines.append(f"    classDef {status.lower()} {STATUS_STYLES[status]}")
    return "\n".join(lines) + "\n"


def _graph(definition: GraphDefinition) -> tuple[list[str], dict[str, str]]:
    lines = ["flowchart TD", '    start_(("start"))']
    names: dict[str, str] = {}
    for step in definition.steps:
        node = _node(step.id)
        names[node] = mirror_step_name(step)
        left, right = _SHAPES[step.kind]
        label = step.label or step.id
        detail = f" · {step.uses}" if step.kind in ("machine", "human") and step.uses != step.id else ""
        lines.append(f"    {node}{left}{_text(label + detail)}{right}")
    lines.append(f"    start_ --> {_node(definition.start)}")
    for edge in definition.edges:
        text = edge.condition or (
            "default" if edge.default else ("timeout" if edge.on == "timeout" else None)
        )
        arrow = f' -->|"{_text(text)}"| ' if text else " --> "
        lines.append(f"    {_node(edge.source)}{arrow}{_node(edge.target)}")
    lines.append('    end_(("end"))')
    for terminal in definition.terminals:
        lines.append(f"    {_node(terminal)} --> end_")
    return lines, names


def _code_order(
    definition: WorkflowDefinition[..., Any],
) -> list[MachineStep[..., Any] | HumanStep[..., Any]]:
    """The workflow's steps in the order its code first names them."""
    known = {s.name: s for s in definition.steps()}
    scope = definition.fn.__globals__
    order: dict[str, MachineStep[..., Any] | HumanStep[..., Any]] = {}
    for instruction in dis.get_instructions(definition.fn):
        value = scope.get(str(instruction.argval)) if instruction.opname == "LOAD_GLOBAL" else None
        if isinstance(value, MachineStep | HumanStep) and value.name in known:
            order.setdefault(value.name, value)
    for name, step in known.items():
        order.setdefault(name, step)
    return list(order.values())


def _code(definition: WorkflowDefinition[..., Any]) -> tuple[list[str], dict[str, str]]:
    lines = ["flowchart TD", '    start_(("start"))']
    names: dict[str, str] = {}
    previous = "start_"
    for step in _code_order(definition):
        node = _node(step.name)
        names[node] = step.name
        left, right = _SHAPES["human" if isinstance(step, HumanStep) else "machine"]
        lines.append(f"    {node}{left}{_text(step.name)}{right}")
        lines.append(f"    {previous} --> {node}")
        previous = node
    lines.append('    end_(("end"))')
    lines.append(f"    {previous} --> end_")
    return lines, names
