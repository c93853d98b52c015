"""The interpreter: one Temporal workflow (``dwf.graph``) that runs any graph definition.

Its input is the definition itself (with the graphs its sub-workflow steps run) and the
instance's data, so the definition an instance started with is in its history: pinned for
its life, whatever versions are registered later, and replayed exactly. Step
implementations are looked up by name in the worker's registry, so a new graph (or version)
that uses steps the worker has runs without a redeploy. Deterministic and free of I/O: CEL
expressions, branch tasks on the workflow's event loop, Temporal timers and child workflows.

The mirror sees the same events as for code-first workflows: MACHINE and HUMAN steps by their
implementation's name, GATEWAY, TIMER and WEBHOOK steps by their id (a sub-workflow is a
MACHINE step), and a ``StepSkipped`` for every step on a branch not taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from . import events as ev
from ._definition import HumanStep, MachineStep, WorkflowDefinition
from ._errors import DefinitionError, ErrorKind
from ._graph_check import CheckedGraph, check_graph, reach, step_input_type
from ._graph_model import (
    Edge,
    EventNode,
    ExclusiveGateway,
    GraphDefinition,
    HumanNode,
    JoinGateway,
    MachineNode,
    ParallelGateway,
    SubWorkflowNode,
    TimerNode,
)
from ._ids import step_execution_id_for
from ._outbox import jsonable
from ._registry import registry
from ._runtime import SYSTEM_USER, WorkflowRuntime
from ._types import StepType, TaskStatus
from ._waits import event_wait, record_done, record_start, timer_step
from ._workflow_base import DurableWorkflowBase
from .protocol import GRAPH_WORKFLOW

__all__ = ["GraphWorkflow", "graph_start_input", "mirror_step_name"]


def mirror_step_name(step: Any) -> str:
    """The ``step_name`` a graph step has in the mirror: its implementation's name, else its id."""
    return str(step.uses) if isinstance(step, MachineNode | HumanNode) else str(step.id)


def graph_start_input(
    definition: GraphDefinition, graphs: dict[str, GraphDefinition] | None = None
) -> dict[str, Any]:
    """The interpreter's first argument: the definition and the graphs its sub-workflows run."""
    return {
        "definition": definition.to_dict(),
        "graphs": {key: graph.to_dict() for key, graph in (graphs or {}).items()},
    }


def _fail(message: str, kind: str = "GraphError") -> ApplicationError:
    return ApplicationError(message, type=kind, non_retryable=True)


class _Interpreter:
    def __init__(self, rt: WorkflowRuntime, checked: CheckedGraph, graphs: dict[str, Any]) -> None:
        self.rt = rt
        self.graph = checked
        self.definition = checked.definition
        self.graphs = graphs
        self.terminals = set(self.definition.terminals)
        self.finished: set[str] = set()  # run or skipped
        self.inflight: dict[str, tuple[str, UUID]] = {}  # step id -> (mirror name, row id)

    async def run(self, data: dict[str, Any]) -> dict[str, Any]:
        return await self._walk(self.definition.start, data, stop=None)

    async def _walk(self, step_id: str, data: dict[str, Any], stop: str | None) -> dict[str, Any]:
        current = step_id
        while current != stop:
            step = self.definition.step(current)
            if isinstance(step, ParallelGateway):
                data = await self._fork(step, data)
                current = step.join
                taken = self.definition.outgoing(current)[0] if current not in self.terminals else None
            else:
                data, taken = await self._execute(step, data)
            self.finished.add(current)
            if taken is None:
                return data
            self._skip_not_taken(current, taken, stop)
            current = taken.target
        return data

    # -- steps ------------------------------------------------------------------------------

    async def _execute(self, step: Any, data: dict[str, Any]) -> tuple[dict[str, Any], Edge | None]:
        out = self.definition.outgoing(step.id)
        single = next((e for e in out if e.on is None), None)
        if isinstance(step, MachineNode | HumanNode):
            impl = registry.steps.get(step.uses)
            if not isinstance(impl, MachineStep | HumanStep):
                raise _fail(
                    f"step {step.id!r}: no step {step.uses!r} is registered on this worker",
                    "UnknownImplementation",
                )
            value = self._input(step, data)
            model = step_input_type(impl)
            argument = model.model_validate(value) if model is not None else value
            result = await self._track(step, impl(argument))
            return {**data, step.output or step.id: jsonable(result)}, single
        if isinstance(step, ExclusiveGateway):
            return data, self._choose(step, data, out)
        if isinstance(step, TimerNode):
            if step.until is not None:
                until = _as_time(self._eval(step, "until", data), step.id)
                await self._track(step, timer_step(step.id, until=until))
            else:
                await self._track(step, timer_step(step.id, timedelta(seconds=step.seconds or 0)))
            return data, single
        if isinstance(step, EventNode):
            key = self._eval(step, "correlation", data)
            timeout = timedelta(seconds=step.timeout_seconds) if step.timeout_seconds else None
            received, payload = await self._track(step, event_wait(step.id, step.event, str(key), timeout))
            if not received:
                return data, next(e for e in out if e.on == "timeout")
            return {**data, step.output or step.id: payload}, single
        if isinstance(step, SubWorkflowNode):
            result = await self._track(step, self._child(step, data))
            return {**data, step.output or step.id: jsonable(result)}, single
        raise _fail(f"step {step.id!r} of kind {step.kind!r} cannot run here")

    async def _track(self, step: Any, work: Any) -> Any:
        """Await a step's work, remembering its row while it runs (a cancelled branch skips it)."""
        # The step takes the next sequence number before its first suspension, so no other
        # branch can take it in between.
        row = step_execution_id_for(self.rt.instance_id, self.rt._step_seq + 1)
        self.inflight[step.id] = (mirror_step_name(step), row)
        try:
            return await work
        finally:
            self.inflight.pop(step.id, None)

    def _input(self, step: Any, data: dict[str, Any]) -> Any:
        return data if getattr(step, "input", None) is None else self._eval(step, "input", data)

    def _eval(self, step: Any, attribute: str, data: dict[str, Any]) -> Any:
        expression = self.graph.expressions[(step.id, attribute)]
        try:
            return expression.evaluate(data)
        except Exception as exc:
            raise _fail(
                f"{attribute} of step {step.id!r} ({expression.text!r}) failed: {exc}", "GraphExpressionError"
            ) from None

    def _choose(self, step: ExclusiveGateway, data: dict[str, Any], out: list[Edge]) -> Edge:
        started = workflow.now()
        row = record_start(self.rt, step.id, StepType.GATEWAY, {"kind": "exclusive"})
        chosen: Edge | None = None
        for edge in out:
            if edge.default:
                continue
            expression = self.graph.conditions[self.graph.edge_index(edge)]
            try:
                holds = expression.evaluate(data)
            except Exception as exc:
                self._gateway_failed(step.id, row, f"condition of edge {edge.label} failed: {exc}")
                raise _fail(
                    f"condition of edge {edge.label} ({expression.text!r}) failed: {exc}",
                    "GraphExpressionError",
                ) from None
            if holds is True:
                chosen = edge
                break
        if chosen is None:
            chosen = next((e for e in out if e.default), None)
        if chosen is None:
            self._gateway_failed(step.id, row, "no condition holds and there is no default edge")
            raise _fail(f"exclusive gateway {step.id!r}: no condition holds and there is no default edge")
        record_done(self.rt, step.id, row, {"taken": chosen.target}, started)
        return chosen

    def _gateway_failed(self, name: str, row: UUID, error: str) -> None:
        self.rt.emit(
            ev.StepFailed, step_name=name, error=error, error_type="GraphError", step_execution_id=row
        )

    async def _child(self, step: SubWorkflowNode, data: dict[str, Any]) -> Any:
        argument = self._input(step, data)
        info = workflow.info()
        memo = {k: v for k, v in (("tenant_id", self.rt.tenant_id), ("created_by", self.rt.created_by)) if v}
        child_id = f"{info.workflow_id}.{step.id}"
        row = record_start(
            self.rt, step.id, StepType.MACHINE, {"workflow": step.workflow, "version": step.version}
        )
        started = workflow.now()
        await self.rt.flush_soon()
        graph = self.graphs.get(f"{step.workflow}@{step.version}" if step.version else step.workflow)
        try:
            if graph is not None:
                result = await workflow.execute_child_workflow(
                    GRAPH_WORKFLOW,
                    args=[{"definition": graph, "graphs": self.graphs}, argument],
                    id=child_id,
                    task_queue=info.task_queue,
                    memo=memo or None,
                )
            else:
                try:
                    code = registry.get(step.workflow, step.version)
                except Exception:
                    raise _fail(
                        f"step {step.id!r}: workflow {step.workflow!r} is neither a @workflow on this worker "
                        "nor a graph given at start",
                        "UnknownImplementation",
                    ) from None
                result = await workflow.execute_child_workflow(
                    code.workflow_type,
                    args=[argument],
                    id=child_id,
                    task_queue=info.task_queue,
                    memo=memo or None,
                )
        except ApplicationError:
            raise
        except Exception as exc:
            self.rt.emit(
                ev.StepFailed,
                step_name=step.id,
                error=str(exc),
                error_type=type(exc).__name__,
                step_execution_id=row,
            )
            raise
        record_done(self.rt, step.id, row, result, started)
        return result

    # -- forks and joins ------------------------------------------------------------------

    async def _fork(self, fork: ParallelGateway, data: dict[str, Any]) -> dict[str, Any]:
        join = self.definition.step(fork.join)
        assert isinstance(join, JoinGateway)
        edges = self.definition.outgoing(fork.id)
        started = workflow.now()
        row = record_start(self.rt, fork.id, StepType.GATEWAY, {"kind": "parallel"})
        record_done(self.rt, fork.id, row, {"branches": [e.target for e in edges]}, started)
        self.finished.add(fork.id)
        results: list[dict[str, Any] | None] = [None] * len(edges)
        failure: list[BaseException] = []

        async def branch(index: int, edge: Edge) -> None:
            try:
                results[index] = await self._walk(edge.target, dict(data), stop=join.id)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                failure.append(exc)

        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(branch(i, e)) for i, e in enumerate(edges)]
        need = len(edges) if join.wait == "all" else join.wait
        try:
            await workflow.wait_condition(
                lambda: bool(failure) or sum(r is not None for r in results) >= need
            )
        except asyncio.CancelledError:  # the instance is canceled: so is every branch
            for task in tasks:
                task.cancel()
            raise
        join_started = workflow.now()
        join_row = record_start(self.rt, join.id, StepType.GATEWAY, {"kind": "join", "wait": join.wait})
        late = [i for i, t in enumerate(tasks) if not t.done()]
        pending_tasks = {t.task_id for t in self.rt.tasks.values() if t.status is TaskStatus.PENDING}
        inflight = dict(self.inflight)
        for index in late:
            tasks[index].cancel()
        for index in late:
            with contextlib.suppress(asyncio.CancelledError):
                await tasks[index]
        if failure:
            self._gateway_failed(join.id, join_row, f"a branch failed: {failure[0]}")
            raise failure[0]
        reason = f"join {join.id!r} had the {need} branch(es) it waits for"
        self._close_cancelled(inflight, pending_tasks, reason)
        for index in late:
            self._skip(sorted(self.graph.branches[fork.id][index] - self.finished), reason)
        merged = self._merge(join, data, edges, results)
        record_done(
            self.rt,
            join.id,
            join_row,
            {"branches": [e.target for e, r in zip(edges, results, strict=True) if r is not None]},
            join_started,
        )
        return merged

    def _close_cancelled(self, inflight: dict[str, tuple[str, UUID]], pending: set[str], reason: str) -> None:
        rt = self.rt
        for task_id in sorted(pending):
            task = rt.tasks[task_id]
            if task.status is TaskStatus.CANCELED:
                rt.emit(
                    ev.HumanTaskCompleted,
                    step_name=task.step_name,
                    task_id=UUID(task.task_id),
                    completed_by=SYSTEM_USER,
                    comment=reason,
                    step_execution_id=UUID(task.step_execution_id),
                    status=TaskStatus.CANCELED.value,
                )
        for step_id, (name, row) in inflight.items():
            if step_id not in self.inflight:
                self.finished.add(step_id)
                rt.emit(ev.StepSkipped, step_name=name, reason=f"canceled: {reason}", step_execution_id=row)

    @staticmethod
    def _merge(
        join: JoinGateway, base: dict[str, Any], edges: list[Edge], results: list[dict[str, Any] | None]
    ) -> dict[str, Any]:
        merged = dict(base)
        by_branch: dict[str, Any] = {}
        for edge, result in zip(edges, results, strict=True):
            if result is None:
                continue
            changes = {k: v for k, v in result.items() if k not in base or base[k] != v}
            if join.merge == "union":
                merged.update(changes)
            else:
                by_branch[edge.target] = changes
        if join.merge == "branches":
            merged[join.output or join.id] = by_branch
        return merged

    # -- skipping -------------------------------------------------------------------------

    def _skip_not_taken(self, source: str, taken: Edge, stop: str | None) -> None:
        others = [e.target for e in self.definition.outgoing(source) if e is not taken]
        if not others:
            return
        successors = self.graph.successors
        kept = reach(successors, [taken.target], stop)
        dropped = reach(successors, others, stop) - kept - self.finished
        if stop is not None:
            dropped.discard(stop)
        order = [s.id for s in self.definition.steps if s.id in dropped]
        self._skip(order, f"branch not taken at {source!r} (took {taken.label})")

    def _skip(self, step_ids: list[str], reason: str) -> None:
        by_id = {s.id: s for s in self.definition.steps}
        for step_id in [s.id for s in self.definition.steps if s.id in set(step_ids)]:
            if step_id in self.finished:
                continue
            self.finished.add(step_id)
            seq = self.rt.next_seq()
            self.rt.emit(
                ev.StepSkipped,
                step_name=mirror_step_name(by_id[step_id]),
                reason=reason,
                step_execution_id=step_execution_id_for(self.rt.instance_id, seq),
            )


def _as_time(value: Any, step_id: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise _fail(
            f"until of timer {step_id!r} gave {value!r}, not an ISO 8601 time", "GraphExpressionError"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _parse(spec: Any) -> tuple[CheckedGraph | None, dict[str, Any], str, str, Exception | None]:
    """The checked definition of a start input, or the error that explains why not."""
    raw = spec.get("definition") if isinstance(spec, dict) else None
    name = str(raw.get("name", "graph")) if isinstance(raw, dict) else "graph"
    version = str(raw.get("version", "1.0.0")) if isinstance(raw, dict) else "0"
    graphs = spec.get("graphs") if isinstance(spec, dict) else None
    graphs = graphs if isinstance(graphs, dict) else {}
    try:
        return _checked(json.dumps(raw, sort_keys=True)), graphs, name, version, None
    except (DefinitionError, TypeError, ValueError) as exc:
        return None, graphs, name, version, exc


@functools.lru_cache(maxsize=256)
def _checked(text: str) -> CheckedGraph:
    # Checking costs milliseconds (schemas, expressions); instances of one definition share
    # the result, which the interpreter only reads. The worker's steps are registered at import.
    return check_graph(GraphDefinition.from_dict(json.loads(text)))


@workflow.defn(name=GRAPH_WORKFLOW)
class GraphWorkflow(DurableWorkflowBase):
    """Runs the graph definition it is started with (``[{"definition", "graphs"}, data]``)."""

    @workflow.run
    async def run(self, spec: Any, data: Any = None) -> Any:
        """Interpret ``spec["definition"]`` over ``data`` (a JSON object); returns the final data."""
        checked, graphs, name, version, problem = _parse(spec)
        rt = self._dwf

        async def interpret(start_data: dict[str, Any]) -> dict[str, Any]:
            if checked is None:
                raise ApplicationError(
                    f"the graph definition cannot run: {problem}",
                    type=ErrorKind.INVALID_INPUT.value,
                    non_retryable=True,
                )
            return await _Interpreter(rt, checked, graphs).run(start_data)

        definition: WorkflowDefinition[..., Any] = WorkflowDefinition(
            fn=interpret,
            name=name,
            version=version,
            description=checked.definition.description if checked else None,
            active=None,
            param_types=(dict[str, Any],),
            return_type=dict[str, Any],
        )
        return await rt.run(definition, (data if data is not None else {},))
