"""Validation of graph definitions, and the checked form the interpreter runs.

:func:`check_graph` raises a specific :class:`sdk.GraphDefinitionError` naming the step or edge
at fault; it returns a :class:`CheckedGraph` (compiled CEL expressions, each fork's branches).
Deterministic and free of I/O: the interpreter checks the definition it was started with.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, TypeAdapter

from ._cel import CelExpression, compile_cel
from ._definition import HumanStep, MachineStep
from ._graph_errors import (
    EdgeTargetError,
    ForkWithoutJoinError,
    GraphCycleError,
    GraphDefinitionError,
    NoPathToTerminalError,
    UnknownImplementationError,
    UnreachableStepError,
)
from ._graph_model import (
    Edge,
    EventNode,
    ExclusiveGateway,
    GraphDefinition,
    HumanNode,
    JoinGateway,
    MachineNode,
    ParallelGateway,
    SubWorkflowNode,
    TimerNode,
)
from ._registry import registry

__all__ = ["CheckedGraph", "check_graph", "reach"]

StepLookup = Callable[[str], MachineStep[..., Any] | HumanStep[..., Any] | None]


@dataclass
class CheckedGraph:
    """A validated graph: the definition, its compiled expressions and its forks' branches."""

    definition: GraphDefinition
    conditions: dict[int, CelExpression] = field(default_factory=dict)  # by edge index
    expressions: dict[tuple[str, str], CelExpression] = field(default_factory=dict)  # (step, attribute)
    branches: dict[str, list[set[str]]] = field(default_factory=dict)  # fork id -> steps of each branch
    successors: dict[str, list[str]] = field(default_factory=dict)

    def edge_index(self, edge: Edge) -> int:
        """The position of ``edge`` in the definition (conditions are keyed by it)."""
        return self.definition.edges.index(edge)


def reach(successors: dict[str, list[str]], starts: Iterable[str], stop: str | None = None) -> set[str]:
    """Every step reachable from ``starts`` (included), not walking past ``stop``."""
    seen: set[str] = set()
    todo = list(starts)
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        if node != stop:
            todo.extend(successors.get(node, ()))
    return seen


def _default_lookup(name: str) -> MachineStep[..., Any] | HumanStep[..., Any] | None:
    return registry.steps.get(name)


def check_graph(
    definition: GraphDefinition,
    *,
    steps: StepLookup | None = None,
    workflow_known: Callable[[str, str | None], bool] | None = None,
) -> CheckedGraph:
    """Validate ``definition`` and compile its expressions.

    Args:
        definition: The graph.
        steps: Finds a step implementation by name (default: the process's registry).
        workflow_known: Says whether a sub-workflow's definition exists (None: not checked).

    Raises:
        GraphDefinitionError: The subclass says what is wrong; ``step``/``edge`` say where.
    """
    lookup = steps or _default_lookup
    ids = [s.id for s in definition.steps]
    seen: set[str] = set()
    for step_id in ids:
        if step_id in seen:
            raise GraphDefinitionError(
                f"two steps have the id {step_id!r}: step ids must be unique", step=step_id
            )
        seen.add(step_id)
    if definition.start not in seen:
        raise GraphDefinitionError(
            f"the initial step {definition.start!r} is not a step of the graph", step=definition.start
        )
    for terminal in definition.terminals:
        if terminal not in seen:
            raise GraphDefinitionError(
                f"terminal step {terminal!r} is not a step of the graph", step=terminal
            )
    if not definition.terminals:
        raise GraphDefinitionError("the graph names no terminal step (terminals: [...])")
    for edge in definition.edges:
        for end in (edge.source, edge.target):
            if end not in seen:
                raise EdgeTargetError(
                    f"edge {edge.label} {'leaves' if end == edge.source else 'leads to'} {end!r}, "
                    "which is not a step of the graph",
                    edge=edge.label,
                )
    checked = CheckedGraph(definition)
    successors: dict[str, list[str]] = {i: [] for i in ids}
    for edge in definition.edges:
        successors[edge.source].append(edge.target)
    checked.successors = successors
    _check_implementations(definition, lookup, workflow_known)
    _check_cycles(definition, successors)
    reachable = reach(successors, [definition.start])
    for step_id in ids:
        if step_id not in reachable:
            raise UnreachableStepError(
                f"step {step_id!r} cannot be reached from the initial step {definition.start!r}", step=step_id
            )
    predecessors: dict[str, list[str]] = {i: [] for i in ids}
    for edge in definition.edges:
        predecessors[edge.target].append(edge.source)
    finishing = reach(predecessors, definition.terminals)
    for step_id in ids:
        if step_id not in finishing:
            raise NoPathToTerminalError(
                f"no path leads from step {step_id!r} to a terminal step", step=step_id
            )
    _check_edges(definition)
    _check_forks(definition, checked)
    _compile_expressions(definition, checked, _data_schema(definition, lookup))
    return checked


def _check_implementations(
    definition: GraphDefinition, lookup: StepLookup, workflow_known: Callable[[str, str | None], bool] | None
) -> None:
    for step in definition.steps:
        if isinstance(step, MachineNode | HumanNode):
            wanted = MachineStep if isinstance(step, MachineNode) else HumanStep
            found = lookup(step.uses)
            if not isinstance(found, wanted):
                what = "@machine_step" if wanted is MachineStep else "@human_step"
                hint = "" if found is None else f" ({step.uses!r} is a {type(found).__name__})"
                raise UnknownImplementationError(
                    f"step {step.id!r} uses {step.uses!r}, which is not a registered {what}{hint}: "
                    "import the module that defines it before loading the graph",
                    step=step.id,
                )
        known = workflow_known
        if isinstance(step, SubWorkflowNode) and known is not None and not known(step.workflow, step.version):
            raise UnknownImplementationError(
                f"step {step.id!r} runs workflow {step.workflow!r} (version {step.version or 'active'}), "
                "which is neither a registered @workflow nor a registered graph",
                step=step.id,
            )


def _check_cycles(definition: GraphDefinition, successors: dict[str, list[str]]) -> None:
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in successors[node]:
            if state.get(nxt) == 1:
                cycle = [*trail[trail.index(nxt) :], node, nxt] if nxt in trail else [node, nxt]
                raise GraphCycleError(
                    f"the edges form a cycle ({' -> '.join(dict.fromkeys(cycle))} -> {nxt}): "
                    "a graph runs each step at most once",
                    edge=f"{node} -> {nxt}",
                )
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for step in definition.steps:
        if step.id not in state:
            visit(step.id, [])


def _check_edges(definition: GraphDefinition) -> None:
    terminals = set(definition.terminals)
    for step in definition.steps:
        out = definition.outgoing(step.id)
        if step.id in terminals:
            if out:
                raise GraphDefinitionError(
                    f"terminal step {step.id!r} has outgoing edge {out[0].label}", edge=out[0].label
                )
            continue
        if not out:
            raise NoPathToTerminalError(
                f"step {step.id!r} has no outgoing edge and is not a terminal step", step=step.id
            )
        for edge in out:
            if edge.on == "timeout" and not isinstance(step, EventNode):
                raise GraphDefinitionError(
                    f"edge {edge.label}: only event steps have a timeout edge", edge=edge.label
                )
            if (edge.condition is not None or edge.default) and not isinstance(step, ExclusiveGateway):
                raise GraphDefinitionError(
                    f"edge {edge.label}: conditions and default edges belong to exclusive gateways",
                    edge=edge.label,
                )
        if isinstance(step, ExclusiveGateway):
            defaults = [e for e in out if e.default]
            if len(defaults) > 1:
                raise GraphDefinitionError(
                    f"exclusive gateway {step.id!r} has {len(defaults)} default edges", step=step.id
                )
            for edge in out:
                if edge.default and edge.condition is not None:
                    raise GraphDefinitionError(
                        f"edge {edge.label}: a default edge has no condition", edge=edge.label
                    )
                if not edge.default and edge.condition is None:
                    raise GraphDefinitionError(
                        f"edge {edge.label}: an exclusive gateway's edge needs a condition "
                        "(or default: true)",
                        edge=edge.label,
                    )
        elif isinstance(step, ParallelGateway):
            if len(out) < 2:
                raise ForkWithoutJoinError(
                    f"parallel gateway {step.id!r} needs two or more outgoing edges", step=step.id
                )
        elif isinstance(step, EventNode):
            timeouts = [e for e in out if e.on == "timeout"]
            normal = [e for e in out if e.on is None]
            if len(normal) != 1 or len(timeouts) > 1:
                raise GraphDefinitionError(
                    f"event step {step.id!r} needs one outgoing edge, "
                    "plus one 'on: timeout' edge with timeout_seconds",
                    step=step.id,
                )
            if bool(timeouts) != (step.timeout_seconds is not None):
                raise GraphDefinitionError(
                    f"event step {step.id!r}: timeout_seconds and an 'on: timeout' edge go together",
                    step=step.id,
                )
        elif len(out) != 1:
            raise GraphDefinitionError(
                f"step {step.id!r} has {len(out)} outgoing edges; only gateways and event steps branch",
                step=step.id,
            )
        if isinstance(step, TimerNode) and (step.seconds is None) == (step.until is None):
            raise GraphDefinitionError(
                f"timer step {step.id!r} needs exactly one of seconds or until", step=step.id
            )


def _check_forks(definition: GraphDefinition, checked: CheckedGraph) -> None:
    terminals = set(definition.terminals)
    owners: dict[str, str] = {}
    for step in definition.steps:
        if not isinstance(step, ParallelGateway):
            continue
        try:
            join = definition.step(step.join)
        except KeyError:
            join = None
        if not isinstance(join, JoinGateway):
            raise ForkWithoutJoinError(
                f"parallel gateway {step.id!r} names join {step.join!r}, "
                "which is not a join step of the graph",
                step=step.id,
            )
        if join.id in owners:
            raise ForkWithoutJoinError(
                f"join {join.id!r} closes both {owners[join.id]!r} and {step.id!r}", step=step.id
            )
        owners[join.id] = step.id
        branches: list[set[str]] = []
        for edge in definition.outgoing(step.id):
            members = reach(checked.successors, [edge.target], stop=join.id)
            if join.id not in members:
                raise ForkWithoutJoinError(
                    f"branch {edge.label} of parallel gateway {step.id!r} never reaches its join {join.id!r}",
                    step=step.id,
                    edge=edge.label,
                )
            ends = members & terminals
            if ends:
                raise ForkWithoutJoinError(
                    f"branch {edge.label} of parallel gateway {step.id!r} may end at terminal step "
                    f"{sorted(ends)[0]!r} before its join {join.id!r}",
                    step=step.id,
                    edge=edge.label,
                )
            members.discard(join.id)
            for other in branches:
                shared = members & other
                if shared:
                    raise ForkWithoutJoinError(
                        f"branches of parallel gateway {step.id!r} share step {sorted(shared)[0]!r} "
                        "before the join",
                        step=sorted(shared)[0],
                    )
            branches.append(members)
        inside = set().union(*branches) | {step.id}
        for edge in definition.edges:
            if edge.target == join.id and edge.source not in inside:
                raise ForkWithoutJoinError(
                    f"edge {edge.label} enters join {join.id!r} from outside the branches of {step.id!r}",
                    edge=edge.label,
                )
            if edge.target in inside - {step.id} and edge.source not in inside:
                raise ForkWithoutJoinError(
                    f"edge {edge.label} enters a branch of parallel gateway {step.id!r} from outside it",
                    edge=edge.label,
                )
        if join.wait != "all" and join.wait > len(branches):
            raise GraphDefinitionError(
                f"join {join.id!r} waits for {join.wait} branches; {step.id!r} forks {len(branches)}",
                step=join.id,
            )
        checked.branches[step.id] = branches
    for step in definition.steps:
        if isinstance(step, JoinGateway) and step.id not in owners:
            raise ForkWithoutJoinError(f"join {step.id!r} closes no parallel gateway", step=step.id)


def _output_schema(step: Any, lookup: StepLookup) -> dict[str, Any]:
    impl = lookup(step.uses) if isinstance(step, MachineNode | HumanNode) else None
    try:
        if isinstance(impl, HumanStep):
            return dict(impl.form.model_json_schema())
        if isinstance(impl, MachineStep) and impl.return_type is not Any:
            return dict(TypeAdapter(impl.return_type).json_schema())
    except Exception:  # a type pydantic cannot describe: an open value
        return {}
    return {}  # events, sub-workflows, joins by branch: open values


def _data_schema(definition: GraphDefinition, lookup: StepLookup) -> dict[str, Any] | None:
    """The instance data's schema: the start data's, plus each step's output under its key."""
    if definition.data_schema is None:
        return None
    schema = copy.deepcopy(definition.data_schema)
    schema.setdefault("type", "object")
    properties = schema.setdefault("properties", {})
    defs = schema.setdefault("$defs", {})
    for step in definition.steps:
        if isinstance(step, ExclusiveGateway | ParallelGateway | TimerNode):
            continue
        if isinstance(step, JoinGateway) and step.merge == "union":
            continue
        sub = _output_schema(step, lookup)
        defs.update(sub.pop("$defs", {}))
        properties[getattr(step, "output", None) or step.id] = sub
    return schema


def _compile_expressions(
    definition: GraphDefinition, checked: CheckedGraph, schema: dict[str, Any] | None
) -> None:
    for index, edge in enumerate(definition.edges):
        if edge.condition is not None:
            checked.conditions[index] = compile_cel(
                edge.condition,
                where=f"condition of edge {edge.label}",
                schema=schema,
                boolean=True,
                edge=edge.label,
            )
    for step in definition.steps:
        for attribute in ("input", "until", "correlation"):
            text = getattr(step, attribute, None)
            if text is not None:
                checked.expressions[(step.id, attribute)] = compile_cel(
                    text, where=f"{attribute} of step {step.id!r}", schema=schema, step=step.id
                )


def step_input_type(impl: MachineStep[..., Any] | HumanStep[..., Any]) -> type[BaseModel] | None:
    """The pydantic model a step's single parameter takes, if it takes one."""
    if isinstance(impl, MachineStep):
        first = impl.param_types[0] if impl.param_types else None
    else:
        import typing

        try:
            hints = typing.get_type_hints(impl.fn)
        except Exception:
            return None
        params = [n for n in impl.fn.__code__.co_varnames[: impl.fn.__code__.co_argcount]]
        first = hints.get(params[0]) if params else None
    return first if isinstance(first, type) and issubclass(first, BaseModel) else None
