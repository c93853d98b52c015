"""The registry: versions by name, which one new instances start, lookups."""

from __future__ import annotations

from typing import Any

import pytest

import sdk
from sdk import DefinitionError, WorkflowDefinition, WorkflowNotFoundError
from sdk._registry import Registry, parse_version
from tests.workflows import approvals


async def _orders() -> None:
    return None


async def _billing() -> None:
    return None


def _definition(
    version: str, *, active: bool | None = None, name: str = "orders"
) -> WorkflowDefinition[..., Any]:
    return WorkflowDefinition(
        fn=_orders if name == "orders" else _billing,
        name=name,
        version=version,
        description=None,
        active=active,
        param_types=(),
        return_type=None,
    )


def _registry(*definitions: WorkflowDefinition[..., Any]) -> Registry:
    registry = Registry()
    for definition in definitions:
        registry.add_workflow(definition)
    return registry


def test_versions_sort_numerically_not_as_text() -> None:
    registry = _registry(
        _definition("1.10.0"), _definition("1.2.0"), _definition("1.9"), _definition("0.9.1")
    )
    assert [d.version for d in registry.versions("orders")] == ["0.9.1", "1.2.0", "1.9", "1.10.0"]


def test_active_is_the_newest_version_by_default() -> None:
    registry = _registry(_definition("1.10.0"), _definition("1.2.0"), _definition("1.9"))
    assert registry.active("orders").version == "1.10.0"
    assert registry.get("orders").version == "1.10.0"


def test_a_version_marked_active_wins_over_newer_ones() -> None:
    registry = _registry(_definition("1.0.0"), _definition("1.1.0", active=True), _definition("2.0.0"))
    assert registry.active("orders").version == "1.1.0"


def test_the_newest_of_several_marked_active_wins() -> None:
    registry = _registry(
        _definition("1.0.0", active=True), _definition("1.5.0", active=True), _definition("2.0.0")
    )
    assert registry.active("orders").version == "1.5.0"


def test_a_version_marked_inactive_is_skipped() -> None:
    registry = _registry(_definition("1.0.0"), _definition("2.0.0-beta", active=False))
    assert registry.active("orders").version == "1.0.0"


def test_when_every_version_is_inactive_the_newest_still_starts() -> None:
    registry = _registry(_definition("1.0.0", active=False), _definition("1.1.0", active=False))
    assert registry.active("orders").version == "1.1.0"


def test_versions_of_other_workflows_do_not_interfere() -> None:
    registry = _registry(_definition("3.0.0", name="billing"), _definition("1.0.0"))
    assert registry.active("orders").version == "1.0.0"
    assert registry.active("billing").version == "3.0.0"


def test_a_release_is_newer_than_its_pre_release() -> None:
    registry = _registry(_definition("2.0.0"), _definition("2.0.0-rc.1"))
    assert [d.version for d in registry.versions("orders")] == ["2.0.0-rc.1", "2.0.0"]
    assert registry.active("orders").version == "2.0.0"


def test_get_by_version_and_errors_that_list_what_exists() -> None:
    registry = _registry(_definition("1.0.0"), _definition("1.1.0"))
    assert registry.get("orders", "1.0.0").version == "1.0.0"
    with pytest.raises(WorkflowNotFoundError, match=r"no version '9\.9\.9' \(registered: 1\.0\.0, 1\.1\.0\)"):
        registry.get("orders", "9.9.9")
    with pytest.raises(WorkflowNotFoundError, match="no workflow named 'shipping'"):
        registry.active("shipping")
    with pytest.raises(LookupError):  # WorkflowNotFoundError is a LookupError too
        registry.get("shipping")


def test_by_type_finds_the_compiled_workflow_type() -> None:
    registry = _registry(_definition("1.0.0"), _definition("1.1.0"))
    found = registry.by_type("orders@1.1.0")
    assert found is not None
    assert found.version == "1.1.0"
    assert registry.by_type("orders@7.0.0") is None


def test_a_different_function_under_a_registered_key_is_refused() -> None:
    registry = _registry(_definition("1.0.0"))
    with pytest.raises(DefinitionError, match=r"duplicate workflow 'orders' version '1\.0\.0'"):
        registry.add_workflow(
            WorkflowDefinition(
                fn=_billing,
                name="orders",
                version="1.0.0",
                description=None,
                active=None,
                param_types=(),
                return_type=None,
            )
        )


@pytest.mark.parametrize(
    ("version", "parsed"),
    [
        ("1", (1, 0, 0)),
        ("1.2", (1, 2, 0)),
        ("1.2.3", (1, 2, 3)),
        ("10.0.1-rc.1", (10, 0, 1)),
        ("2.0.0+b7", (2, 0, 0)),
    ],
)
def test_parse_version(version: str, parsed: tuple[int, int, int]) -> None:
    assert parse_version(version) == parsed


def test_process_registry_starts_the_newest_test_workflow_version() -> None:
    assert sdk.registry.active("tests.versioned") is approvals.versioned_v2
    assert sdk.registry.get("tests.versioned", "1.0.0") is approvals.versioned_v1
