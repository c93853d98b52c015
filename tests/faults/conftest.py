"""Every test here is marked ``fault``: ``pytest -m "not fault"`` leaves the suite out."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.harness import (  # noqa: F401  (fixtures, registered by name)
    fixture_fleets,
    fixture_mirror_writer_factory,
    fixture_postgres_database,
    fixture_private_postgres,
    fixture_temporal,
)

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.fault)
