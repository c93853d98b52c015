"""Every test here is marked ``fault``: ``pytest -m "not fault"`` leaves the suite out."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdk.runtime import dev_signing_key
from tests.faults.harness import (  # noqa: F401  (fixtures, registered by name)
    fixture_fault_run,
    fixture_fleets,
    fixture_mirror_writer_factory,
    fixture_postgres_database,
    fixture_private_postgres,
    fixture_temporal,
)

_HERE = Path(__file__).parent


# Commands acting as a user are signed: one key for the session's clients and worker processes
# (left alone when the integration tests' conftest set one already).
dev_signing_key()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.fault)
            # Workers killed and servers stopped and restarted: the slowest takes about two
            # minutes on 2 cores, so these get a longer deadline than the rest.
            item.add_marker(pytest.mark.timeout(600))
