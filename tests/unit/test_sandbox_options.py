"""``sandbox_runner(passthrough)`` / ``create_worker(sandbox_passthrough=...)``: what it accepts."""

from __future__ import annotations

from typing import Any

import pytest

import examples.expense_approval
from worker import sandbox_runner


def _passed_through(runner: Any) -> frozenset[str]:
    return frozenset(runner.restrictions.passthrough_modules)


def test_names_and_modules_are_passed_through_beside_the_sdk_s_own() -> None:
    runner = sandbox_runner(["examples.expense_approval", examples.expense_approval, "pydantic"])
    assert {"examples.expense_approval", "pydantic", "sdk"} <= _passed_through(runner)
    assert "examples.expense_approval" not in _passed_through(sandbox_runner())


@pytest.mark.parametrize(
    ("passthrough", "error", "match"),
    [
        ("examples.expense_approval", TypeError, "sequence of module names"),
        (examples.expense_approval, TypeError, "sequence of module names"),
        ([42], TypeError, "42 is not a module name"),
        (["examples.expense_aproval"], ValueError, "no module named 'examples.expense_aproval'"),
        (["no_such_package.models"], ValueError, "no module named 'no_such_package.models'"),
        ([""], ValueError, "no module named ''"),
    ],
)
def test_what_is_not_a_module_is_refused_by_name(
    passthrough: Any, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        sandbox_runner(passthrough)
