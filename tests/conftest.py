"""What every test directory shares: a test that hangs fails alone, and says where it hung.

Each test has a deadline (``timeout`` in ``pyproject.toml``, pytest-timeout's signal method;
a test may raise its own with ``@pytest.mark.timeout(seconds)``). Past it the test fails and
the run goes on. Most of our tests are coroutines on one session-wide event loop, where the
thread stack pytest-timeout prints shows only the loop's ``select``; this hook adds, to the
report of a test that timed out, the stack of every task still pending on that loop, which is
where the test was waiting.

Once the run is over, a watchdog gives the interpreter two minutes to exit: a thread left
running (a worker, a server, an executor not shut down) would otherwise hold the process, and
a CI job with it, until the job's own limit. Past it, every thread's stack is printed and the
process exits with status 1.
"""

from __future__ import annotations

import asyncio
import faulthandler
import io
import sys
import warnings
from collections.abc import Generator
from typing import Any

import pytest


def _timed_out(call: pytest.CallInfo[None]) -> bool:
    return call.excinfo is not None and "from pytest-timeout" in str(call.excinfo.value)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if not (report.failed and _timed_out(call)):
        return
    try:
        with warnings.catch_warnings():  # newer Pythons deprecate asking the policy for its loop
            warnings.simplefilter("ignore", DeprecationWarning)
            loop = asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:  # no loop: a synchronous test; pytest-timeout printed its threads
        return
    stacks = io.StringIO()
    for task in asyncio.all_tasks(loop):
        task.print_stack(file=stacks)
    report.sections.append(("asyncio tasks pending at the timeout", stacks.getvalue()))


EXIT_DEADLINE_SECONDS = 120.0


def pytest_unconfigure(config: pytest.Config) -> None:
    if sys.__stderr__ is not None:
        faulthandler.dump_traceback_later(EXIT_DEADLINE_SECONDS, exit=True, file=sys.__stderr__)
