"""Errors of graph definitions: each names the step or edge at fault.

Every one is a :class:`sdk.DefinitionError` (so a ``TypeError``), raised when a graph is built,
loaded or registered; nothing is registered or started when one is raised.
"""

from __future__ import annotations

from ._errors import DefinitionError, DurableWorkflowError

__all__ = [
    "ConditionSyntaxError",
    "ConditionTypeError",
    "EdgeTargetError",
    "EventTimeoutError",
    "ForkWithoutJoinError",
    "GraphCycleError",
    "GraphDefinitionError",
    "NoPathToTerminalError",
    "UnknownFieldError",
    "UnknownImplementationError",
    "UnreachableStepError",
]


class GraphDefinitionError(DefinitionError):
    """A graph definition is malformed.

    Attributes:
        step: The id of the step at fault, when one is.
        edge: The edge at fault as ``"source -> target"``, when one is.
    """

    def __init__(self, message: str, *, step: str | None = None, edge: str | None = None) -> None:
        super().__init__(message)
        self.step = step
        self.edge = edge


class UnknownImplementationError(GraphDefinitionError):
    """A step names a ``@machine_step``/``@human_step`` or a sub-workflow nobody registered."""


class EdgeTargetError(GraphDefinitionError):
    """An edge starts or ends at a step the graph does not have (an edge to nowhere)."""


class UnreachableStepError(GraphDefinitionError):
    """No path leads from the initial step to this step."""


class NoPathToTerminalError(GraphDefinitionError):
    """No path leads from this step to a terminal step."""


class ForkWithoutJoinError(GraphDefinitionError):
    """A parallel gateway's branches do not all meet at its join."""


class GraphCycleError(GraphDefinitionError):
    """The edges form a cycle (graphs run each step at most once)."""


class ConditionSyntaxError(GraphDefinitionError):
    """A CEL expression does not parse."""


class UnknownFieldError(ConditionSyntaxError):
    """A CEL expression names a field the instance's data does not have."""


class ConditionTypeError(ConditionSyntaxError):
    """A CEL expression does not type-check against the data (or a condition is not boolean)."""


class EventTimeoutError(DurableWorkflowError, TimeoutError):
    """Raised in a workflow when :func:`sdk.wait_for_event` reaches its timeout with no event."""

    def __init__(self, event: str, key: str) -> None:
        super().__init__(f"no event {event!r} with key {key!r} came before the timeout")
        self.event = event
        self.key = key
