"""Graph definitions as data: steps, edges, gateways, timers, external events, sub-workflows.

A :class:`GraphDefinition` is a pydantic model that round-trips exactly through JSON and YAML;
:func:`graph_json_schema` is the JSON Schema editors validate files with (published in
``docs/graph.schema.json``). Building one checks its shape only; :func:`sdk.check_graph` checks
the graph itself (steps, edges, forks, conditions).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ._graph_errors import GraphDefinitionError

__all__ = [
    "Edge",
    "EventNode",
    "ExclusiveGateway",
    "GraphDefinition",
    "GraphStep",
    "HumanNode",
    "JoinGateway",
    "MachineNode",
    "ParallelGateway",
    "SubWorkflowNode",
    "TimerNode",
    "graph_json_schema",
]

_ID = r"^[A-Za-z_][A-Za-z0-9_]*$"


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(pattern=_ID, description="Unique step id; the step's name in the mirror.")]
    label: str | None = Field(default=None, description="Text shown in diagrams (default: the id).")


class MachineNode(_Node):
    """Runs a registered ``@machine_step``; its result goes to ``data[output or id]``."""

    kind: Literal["machine"]
    uses: str = Field(description="Name of a registered @machine_step.")
    input: str | None = Field(default=None, description="CEL expression: the step's input (default: data).")
    output: str | None = Field(default=None, pattern=_ID, description="Data key of the result (default: id).")


class HumanNode(_Node):
    """Creates the task of a registered ``@human_step``; the form goes to ``data[output or id]``."""

    kind: Literal["human"]
    uses: str = Field(description="Name of a registered @human_step.")
    input: str | None = Field(default=None, description="CEL expression: the step's input (default: data).")
    output: str | None = Field(default=None, pattern=_ID, description="Data key of the form (default: id).")


class ExclusiveGateway(_Node):
    """Takes the first outgoing edge whose condition holds, else the default edge."""

    kind: Literal["exclusive"]


class ParallelGateway(_Node):
    """Forks into one branch per outgoing edge; the branches meet at ``join``."""

    kind: Literal["parallel"]
    join: str = Field(description="Id of the join step where every branch ends.")


class JoinGateway(_Node):
    """Waits for the branches of a fork: all of them, or the first ``wait`` to finish.

    ``merge`` states how the branches' data become one: ``union`` (each branch's new or changed
    keys, branches in edge order; a key two branches set is the later edge's) or ``branches``
    (``data[output or id][<first step of the branch>]`` = that branch's new or changed keys).
    """

    kind: Literal["join"]
    wait: Literal["all"] | Annotated[int, Field(ge=1)] = "all"
    merge: Literal["union", "branches"] = "union"
    output: str | None = Field(default=None, pattern=_ID)


class TimerNode(_Node):
    """A durable wait: ``seconds``, or until the time a CEL expression gives (``until``)."""

    kind: Literal["timer"]
    seconds: Annotated[float, Field(ge=0)] | None = None
    until: str | None = Field(default=None, description="CEL expression: an ISO 8601 time or timestamp.")


class EventNode(_Node):
    """Waits for the external event ``event`` whose key equals ``correlation`` (a CEL expression).

    With ``timeout_seconds``, an outgoing edge with ``on: timeout`` is taken when no event came.
    The event's payload goes to ``data[output or id]``.
    """

    kind: Literal["event"]
    event: Annotated[str, Field(min_length=1)]
    correlation: str = Field(description="CEL expression: the correlation key events must carry.")
    timeout_seconds: Annotated[float, Field(gt=0)] | None = None
    output: str | None = Field(default=None, pattern=_ID)


class SubWorkflowNode(_Node):
    """Runs another definition (graph or code-first ``@workflow``) as a child workflow."""

    kind: Literal["subworkflow"]
    workflow: str = Field(description="Name of the definition to run.")
    version: str | None = Field(default=None, description="Its version (default: the active one).")
    input: str | None = Field(default=None, description="CEL expression: the child's input (default: data).")
    output: str | None = Field(default=None, pattern=_ID)


GraphStep = Annotated[
    MachineNode
    | HumanNode
    | ExclusiveGateway
    | ParallelGateway
    | JoinGateway
    | TimerNode
    | EventNode
    | SubWorkflowNode,
    Field(discriminator="kind"),
]
"""One step of a graph, told apart by its ``kind``."""


class Edge(BaseModel):
    """A transition from ``source`` to ``target``.

    ``condition`` (CEL over ``data``) and ``default`` apply to exclusive gateways' edges;
    ``on: timeout`` marks an event step's timeout edge.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    target: str
    condition: str | None = None
    default: bool = False
    on: Literal["timeout"] | None = None

    @property
    def label(self) -> str:
        """``"source -> target"``: how errors and diagrams name the edge."""
        return f"{self.source} -> {self.target}"


class GraphDefinition(BaseModel):
    """A workflow defined as data: steps, edges, the initial step and the terminal steps.

    ``data_schema`` is the JSON Schema of the instance's start data; conditions are checked
    against it and against the steps' output types.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    version: str = "1.0.0"
    description: str | None = None
    data_schema: dict[str, Any] | None = None
    start: str
    terminals: list[str]
    steps: list[GraphStep]
    edges: list[Edge]

    @property
    def workflow_type(self) -> str:
        """``name@version``: the definition's key in ``workflow_definitions``."""
        return f"{self.name}@{self.version}"

    def step(self, step_id: str) -> Any:
        """The step with id ``step_id`` (KeyError when there is none)."""
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def outgoing(self, step_id: str) -> list[Edge]:
        """The edges leaving ``step_id``, in definition order."""
        return [edge for edge in self.edges if edge.source == step_id]

    # -- text forms -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The definition as JSON-able data (defaults left out, so a file round-trips)."""
        return self.model_dump(mode="json", exclude_defaults=True)

    def to_json(self, *, indent: int | None = 2) -> str:
        """The definition as JSON text."""
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    def to_yaml(self) -> str:
        """The definition as YAML text."""
        return str(yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True))

    @classmethod
    def from_dict(cls, data: Any) -> GraphDefinition:
        """Build from parsed JSON/YAML.

        Raises:
            GraphDefinitionError: The data does not have a definition's shape (each problem
                named by its location).
        """
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
                for err in exc.errors()[:10]
            )
            raise GraphDefinitionError(f"not a graph definition: {problems}") from None

    @classmethod
    def from_json(cls, text: str) -> GraphDefinition:
        """Parse JSON text (see :meth:`from_dict`)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GraphDefinitionError(f"not valid JSON: {exc.msg} at line {exc.lineno}") from None
        return cls.from_dict(data)

    @classmethod
    def from_yaml(cls, text: str) -> GraphDefinition:
        """Parse YAML text (see :meth:`from_dict`)."""
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise GraphDefinitionError(f"not valid YAML: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> GraphDefinition:
        """Read a ``.json``, ``.yaml`` or ``.yml`` file.

        Raises:
            GraphDefinitionError: The file cannot be read or holds no valid definition.
        """
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise GraphDefinitionError(f"cannot read {path}: {exc.strerror or exc}") from None
        if path.suffix.lower() in (".yaml", ".yml"):
            return cls.from_yaml(text)
        return cls.from_json(text)


def graph_json_schema() -> dict[str, Any]:
    """The JSON Schema of graph definition files (for editors and CI checks)."""
    schema = GraphDefinition.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "durable-workflows graph definition"
    return schema
