"""The worker's watch on workflow tasks: one warning per failing instance, whatever the attempts.

The runner's logic on activation completions, with a fake workflow instance (the integration
test ``tests/integration/test_failing_tasks.py`` runs the real thing, a nondeterminism error).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from temporalio.bridge.proto.workflow_activation import RemoveFromCache, WorkflowActivation
from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion

from worker import FailingWorkflowTasks
from worker._failing import _WatchedInstance


class _Info:
    workflow_id, run_id, workflow_type = "wf-1", "run-1", "flow@1"


class _Fake:
    """A workflow instance whose next activation fails (an exception in workflow code) or not."""

    def __init__(self) -> None:
        self.fail = True

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        completion = WorkflowActivationCompletion(run_id=act.run_id)
        if self.fail:
            completion.failed.failure.message = "KeyError: 'amount'"
        else:
            completion.successful.SetInParent()
        return completion


def _activation(*, evict: bool = False) -> WorkflowActivation:
    act = WorkflowActivation(run_id="run-1", is_replaying=False)
    if evict:
        act.jobs.add().remove_from_cache.reason = RemoveFromCache.EvictionReason.LANG_FAIL
    else:
        act.jobs.add().signal_workflow.signal_name = "go"
    return act


def test_an_exception_in_workflow_code_is_reported_once_until_the_task_succeeds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="dwf.worker")
    tracker = FailingWorkflowTasks()
    fake = _Fake()
    for _ in range(3):  # three attempts: each a new instance, a failed activation, an eviction
        watched = _WatchedInstance(fake, _Info(), tracker)  # type: ignore[arg-type]
        watched.activate(_activation())
        watched.activate(_activation(evict=True))
    (failing,) = tracker.tasks
    assert (failing.run_id, failing.failures, failing.error) == ("run-1", 3, "KeyError: 'amount'")
    lines: list[Any] = [r for r in caplog.records if "is failing" in r.getMessage()]
    assert len(lines) == 1 and "wf-1" in lines[0].getMessage()

    fake.fail = False  # fixed code: the attempt succeeds, and the next activation proves it
    watched = _WatchedInstance(fake, _Info(), tracker)  # type: ignore[arg-type]
    watched.activate(_activation())
    assert len(tracker.tasks) == 1  # not yet: the completion may still be refused
    watched.activate(_activation())
    assert tracker.tasks == []
    assert any("succeeds again" in r.getMessage() for r in caplog.records)
