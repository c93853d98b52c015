"""Unit-test fixtures: no server. Definitions made here never leak into the process registry."""

from __future__ import annotations

import sys
import textwrap
import types
import uuid
from collections.abc import Callable, Iterator

import pytest

from sdk import registry


@pytest.fixture(autouse=True)
def isolated_registry() -> Iterator[None]:
    """Restore the process-wide registry after each test (workers register every known step)."""
    steps, workflows = dict(registry.steps), dict(registry.workflows)
    yield
    registry.steps.clear()
    registry.steps.update(steps)
    registry.workflows.clear()
    registry.workflows.update(workflows)


@pytest.fixture
def module_from_source() -> Iterator[Callable[[str], types.ModuleType]]:
    """Execute source text as a new, importable module (module-level functions, real globals)."""
    created: list[str] = []

    def make(source: str) -> types.ModuleType:
        name = f"dwf_unit_{uuid.uuid4().hex}"
        module = types.ModuleType(name)
        sys.modules[name] = module
        created.append(name)
        exec(compile(textwrap.dedent(source), f"<{name}>", "exec"), module.__dict__)
        return module

    yield make
    for name in created:
        sys.modules.pop(name, None)
