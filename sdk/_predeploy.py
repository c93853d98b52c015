"""Before a deploy: replay the histories of running instances against the code about to ship.

Instances wait on people for days while the code changes under them. A change that alters the
commands an instance already issued (a step added before a wait, a step renamed) makes its next
workflow task fail with a nondeterminism error on the new workers, and Temporal retries that task
forever. :func:`check_running_instances` finds those instances first: it lists the running
instances of the given workflow types, fetches each history and replays it with Temporal's
``Replayer`` against the definitions in this process (the code about to be deployed).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.worker import Replayer

from ._graph_run import GraphWorkflow
from ._registry import registry
from ._sandbox import sandbox_runner
from .protocol import GRAPH_WORKFLOW

if TYPE_CHECKING:
    from ._client import WorkflowClient
    from ._definition import WorkflowDefinition

__all__ = ["ReplayProblem", "check_running_instances"]


def _quiet_runtime() -> Runtime:
    # Replaying a broken history makes Temporal's core log a warning per workflow task on
    # stdout; the problems are reported here instead.
    logging = LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))
    return Runtime(telemetry=TelemetryConfig(logging=logging))


@dataclass(frozen=True)
class ReplayProblem:
    """A running instance the new code would not replay."""

    workflow_id: str
    run_id: str
    workflow_type: str
    error: str


async def check_running_instances(
    client: WorkflowClient,
    workflows: Iterable[WorkflowDefinition[..., Any]] | None = None,
    *,
    query: str | None = None,
    limit: int = 1000,
) -> tuple[int, list[ReplayProblem]]:
    """(instances replayed, those that would break) for the running instances of ``workflows``.

    ``workflows`` defaults to every definition registered in this process. An instance of a
    workflow type this process does not define is reported too: no new worker would run it.
    ``query`` narrows the listing (a Temporal visibility filter, e.g. ``TaskQueue = 'q'``).
    """
    definitions = list(registry.workflows.values()) if workflows is None else list(workflows)
    known = {d.workflow_type: d for d in definitions}
    names = {d.name for d in definitions}
    replayer = Replayer(
        # The graph interpreter replays graph instances with the steps this code registers.
        workflows=[*dict.fromkeys(d.workflow_class for d in definitions), GraphWorkflow],
        data_converter=pydantic_data_converter,
        workflow_runner=sandbox_runner(),
        runtime=_quiet_runtime(),
    )
    problems: list[ReplayProblem] = []
    checked = 0
    running = "ExecutionStatus = 'Running'" + (f" AND ({query})" if query else "")
    async for execution in client.temporal.list_workflows(running, limit=limit):
        name = execution.workflow_type.partition("@")[0]
        if name not in names and execution.workflow_type != GRAPH_WORKFLOW:
            continue  # another application's workflow
        checked += 1
        if execution.workflow_type not in known and execution.workflow_type != GRAPH_WORKFLOW:
            error = f"no definition of {execution.workflow_type} in the code about to be deployed"
            problems.append(ReplayProblem(execution.id, execution.run_id, execution.workflow_type, error))
            continue
        handle = client.temporal.get_workflow_handle(execution.id, run_id=execution.run_id)
        history = await handle.fetch_history()
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        if result.replay_failure is not None:
            problems.append(
                ReplayProblem(
                    execution.id, execution.run_id, execution.workflow_type, str(result.replay_failure)
                )
            )
    return checked, problems
