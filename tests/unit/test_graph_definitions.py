"""Graph definitions without a server: round trips, the published schema, every validation error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import tests.workflows.graphs  # noqa: F401 - registers the steps graphs name
from sdk import (
    ConditionSyntaxError,
    ConditionTypeError,
    EdgeTargetError,
    ForkWithoutJoinError,
    GraphCycleError,
    GraphDefinition,
    GraphDefinitionError,
    NoPathToTerminalError,
    UnknownFieldError,
    UnknownImplementationError,
    UnreachableStepError,
    check_graph,
    graph_json_schema,
    mermaid,
)
from tests.workflows.graphs import claim_graph, graph_code_waits

SCHEMA_FILE = Path(__file__).parents[2] / "docs" / "graph.schema.json"


def test_json_and_yaml_round_trips_are_exact() -> None:
    graph = claim_graph()
    assert GraphDefinition.from_json(graph.to_json()) == graph
    assert GraphDefinition.from_yaml(graph.to_yaml()) == graph
    assert json.loads(graph.to_json()) == GraphDefinition.from_yaml(graph.to_yaml()).to_dict()
    assert GraphDefinition.from_yaml(graph.to_yaml()).to_yaml() == graph.to_yaml()


def test_load_reads_json_and_yaml_files(tmp_path: Path) -> None:
    graph = claim_graph()
    (tmp_path / "g.yaml").write_text(graph.to_yaml())
    (tmp_path / "g.json").write_text(graph.to_json())
    assert GraphDefinition.load(tmp_path / "g.yaml") == GraphDefinition.load(tmp_path / "g.json") == graph


def test_the_published_json_schema_is_current_and_accepts_a_definition() -> None:
    import jsonschema

    assert json.loads(SCHEMA_FILE.read_text()) == graph_json_schema()
    jsonschema.validate(claim_graph().to_dict(), graph_json_schema())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "x", "steps": [{"id": "a", "kind": "nope"}]}, graph_json_schema())


def test_a_malformed_document_names_the_field() -> None:
    with pytest.raises(GraphDefinitionError, match=r"steps\.0"):
        GraphDefinition.from_dict(
            {"name": "x", "start": "a", "terminals": ["a"], "steps": [{"id": "a"}], "edges": []}
        )


def _mutated(**changes: Any) -> GraphDefinition:
    data = claim_graph().to_dict()
    for key, value in changes.items():
        data[key] = value(data[key]) if callable(value) else value
    return GraphDefinition.from_dict(data)


def _replace_step(step_id: str, **fields: Any) -> Any:
    return lambda steps: [{**s, **fields} if s["id"] == step_id else s for s in steps]


def _replace_edge(edge: str, **fields: Any) -> Any:
    source, target = edge.split(" -> ")
    return lambda edges: [
        {**e, **fields} if (e["source"], e["target"]) == (source, target) else e for e in edges
    ]


CASES = [
    (UnknownImplementationError, {"steps": _replace_step("assess", uses="graph_nowhere")}, "assess", None),
    (UnknownImplementationError, {"steps": _replace_step("review", uses="graph_assess")}, "review", None),
    (
        EdgeTargetError,
        {"edges": _replace_edge("fraud -> checks_done", target="limbo")},
        None,
        "fraud -> limbo",
    ),
    (
        UnreachableStepError,
        {
            "steps": lambda s: [*s, {"id": "orphan", "kind": "machine", "uses": "graph_pay"}],
            "edges": lambda e: [*e, {"source": "orphan", "target": "pay"}],
        },
        "orphan",
        None,
    ),
    (
        NoPathToTerminalError,
        {
            "steps": lambda s: [*s, {"id": "dead", "kind": "machine", "uses": "graph_pay"}],
            "edges": lambda e: [*e, {"source": "triage", "target": "dead", "condition": "data.amount > 1.0"}],
        },
        "dead",
        None,
    ),
    (ForkWithoutJoinError, {"steps": _replace_step("checks", join="decide")}, "checks", None),
    (
        ForkWithoutJoinError,
        {"edges": _replace_edge("fraud -> checks_done", target="reject")},
        "checks",
        "checks -> fraud",
    ),
    (
        GraphCycleError,
        {"edges": lambda e: [*e, {"source": "pay", "target": "assess"}]},
        None,
        None,
    ),
    (
        ConditionSyntaxError,
        {"edges": _replace_edge("triage -> pay", condition="data.assess.risk <")},
        None,
        "triage -> pay",
    ),
    (
        UnknownFieldError,
        {"edges": _replace_edge("triage -> pay", condition="data.assess.rsik < 1")},
        None,
        "triage -> pay",
    ),
    (
        UnknownFieldError,
        {"edges": _replace_edge("triage -> pay", condition="data.amont > 1.0")},
        None,
        "triage -> pay",
    ),
    (UnknownFieldError, {"steps": _replace_step("partner", correlation="claim_id")}, "partner", None),
    (
        ConditionTypeError,
        {"edges": _replace_edge("triage -> pay", condition='data.amount > "big"')},
        None,
        "triage -> pay",
    ),
    (
        ConditionTypeError,
        {"edges": _replace_edge("triage -> pay", condition="data.amount + 1.0")},
        None,
        "triage -> pay",
    ),
]


@pytest.mark.parametrize(("error", "changes", "step", "edge"), CASES)
def test_each_validation_error_names_the_step_or_edge(
    error: type[GraphDefinitionError], changes: dict[str, Any], step: str | None, edge: str | None
) -> None:
    graph = _mutated(**changes)
    with pytest.raises(error) as raised:
        check_graph(graph)
    assert isinstance(raised.value, TypeError)  # a DefinitionError
    if step is not None:
        assert raised.value.step == step and repr(step) in str(raised.value)
    if edge is not None:
        assert raised.value.edge == edge and edge in str(raised.value)


def test_a_valid_graph_checks_and_records_its_branches() -> None:
    checked = check_graph(claim_graph())
    assert checked.branches == {"checks": [{"review"}, {"fraud"}]}


def test_conditions_evaluate_deterministically() -> None:
    checked = check_graph(claim_graph())
    graph = checked.definition
    index = graph.edges.index(next(e for e in graph.edges if e.condition == "data.assess.risk < 1"))
    data = {"claim_id": "a", "amount": 1.0, "assess": {"risk": 0, "note": ""}}
    assert [checked.conditions[index].evaluate(data) for _ in range(3)] == [True, True, True]


def test_mermaid_of_a_graph_and_of_code_with_statuses() -> None:
    text = mermaid(claim_graph(), {"graph_assess": "SUCCEEDED", "graph_reject": "SKIPPED"})
    assert text.startswith("flowchart TD")
    assert 'n_triage -->|"data.assess.risk < 1"| n_pay' in text
    assert "class n_assess succeeded" in text and "class n_reject skipped" in text
    code = mermaid(graph_code_waits)
    assert "flowchart TD" in code


def test_the_example_graph_is_valid() -> None:
    import examples.insurance_claim  # noqa: F401 - registers the steps it names

    graph = GraphDefinition.load(Path(__file__).parents[2] / "examples" / "insurance_claim.yaml")
    checked = check_graph(graph)
    assert checked.branches == {"checks": [{"adjuster"}, {"fraud"}]}
