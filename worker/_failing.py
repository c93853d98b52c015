"""Workflow tasks that keep failing: seen by the worker, reported once per instance.

A workflow task fails when workflow code raises an exception that is not a Temporal failure, or
when the worker's code no longer replays an instance's history (nondeterminism); Temporal retries
it forever and the instance silently makes no progress. temporalio itself logs every failed
attempt (its core a "Failing workflow task" warning, its Python side a "Failed activation"
warning with the traceback), so a stuck instance repeats the same lines every few seconds.

The worker watches instead where every attempt ends: its workflow runner (:class:`WatchingRunner`,
wrapping the sandboxed runner) sees each activation's completion, a failed one (an exception in
workflow code) and the eviction that follows a nondeterminism error (core's reason
``NONDETERMINISM``). :class:`FailingWorkflowTasks` keeps the instances whose last attempt failed:
one warning the first time (with the traceback, when there is one), a note when the instance
moves again, and the ``dwf_workflow_tasks_failing`` gauge. temporalio's per-attempt lines about
those instances are dropped (:class:`QuietRetries`). ``dwf instances list --failing-task`` asks
Temporal for the same instances, whichever worker runs them.
"""

from __future__ import annotations

import logging
import re
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import temporalio.workflow
from temporalio.bridge.proto.workflow_activation import RemoveFromCache, WorkflowActivation
from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.converter import StorageDriverStoreContext
from temporalio.service import RPCError
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails, WorkflowRunner

__all__ = ["FailingTask", "FailingWorkflowTasks", "QuietRetries", "WatchingRunner"]

logger = logging.getLogger("dwf.worker")

_PYTHON_LOGGER = "temporalio.worker._workflow_instance"
_CORE_LOGGERS = ("temporalio.core", "temporalio.bridge.runtime")
_TASK_FAILURE = "WorkflowTaskFailure"  # temporalio's identifier on its failed-activation record
_MAX_TRACKED = 10_000
_NONDETERMINISM = RemoveFromCache.EvictionReason.NONDETERMINISM


@dataclass
class FailingTask:
    """An instance whose workflow task failed on this worker and has not succeeded since."""

    workflow_id: str
    run_id: str
    workflow_type: str
    error: str
    since: datetime = field(default_factory=lambda: datetime.now(UTC))
    failures: int = 1


class FailingWorkflowTasks:
    """The instances whose workflow task is failing on this worker (bounded, oldest dropped)."""

    def __init__(self) -> None:
        self._tasks: dict[str, FailingTask] = {}
        self._checked = 0.0
        _TRACKERS.add(self)

    def __contains__(self, run_id: object) -> bool:
        return run_id in self._tasks

    @property
    def tasks(self) -> list[FailingTask]:
        """The failing instances, oldest first."""
        return list(self._tasks.values())

    def failed(self, info: temporalio.workflow.Info, error: str, exc_info: Any = None) -> None:
        """A workflow task of ``info``'s run failed: log it the first time only."""
        known = self._tasks.get(info.run_id)
        if known is not None:
            known.failures += 1
            return
        if len(self._tasks) >= _MAX_TRACKED:
            self._tasks.pop(next(iter(self._tasks)))
        self._tasks[info.run_id] = FailingTask(info.workflow_id, info.run_id, info.workflow_type, error)
        logger.warning(
            "workflow task of %s (run %s, %s) is failing: %s. Temporal retries it until the code "
            "is fixed, or the instance is reset or terminated; this is reported once per instance "
            "(dwf_workflow_tasks_failing, `dwf instances list --failing-task`)",
            info.workflow_id,
            info.run_id,
            info.workflow_type,
            error,
            exc_info=exc_info,
            extra={"workflow_id": info.workflow_id, "run_id": info.run_id},
        )

    def succeeded(self, run_id: str) -> None:
        """A workflow task of the run completed (beyond its replay): it moves again."""
        gone = self._tasks.pop(run_id, None)
        if gone is not None:
            logger.info(
                "workflow task of %s (run %s) succeeds again after %d failed attempt(s)",
                gone.workflow_id,
                run_id,
                gone.failures,
            )

    async def refresh(self, client: Client, *, every: float = 30.0) -> None:
        """Forget instances Temporal no longer retries (terminated, reset, or moving on another
        worker); at most once every ``every`` seconds, one describe call per failing instance."""
        if not self._tasks or time.monotonic() - self._checked < every:
            return
        self._checked = time.monotonic()
        for task in list(self._tasks.values()):
            try:
                described = await client.get_workflow_handle(task.workflow_id, run_id=task.run_id).describe()
            except RPCError:
                self._tasks.pop(task.run_id, None)
                continue
            raw = described.raw_description
            failing = (
                described.status == WorkflowExecutionStatus.RUNNING
                and raw.HasField("pending_workflow_task")
                and raw.pending_workflow_task.attempt > 1
            )
            if not failing:
                self._tasks.pop(task.run_id, None)


_TRACKERS: weakref.WeakSet[FailingWorkflowTasks] = weakref.WeakSet()
_TRACEBACKS: dict[str, Any] = {}  # run id -> exc_info of temporalio's dropped record, for our line


def _tracked(run_id: object) -> bool:
    return any(run_id in tracker for tracker in list(_TRACKERS))


class QuietRetries(logging.Filter):
    """Drops temporalio's per-attempt lines about failing workflow tasks (reported once instead).

    Installed once per process on temporalio's loggers while a watched worker exists. The
    Python side's record comes before the runner sees the failure: its traceback is kept for
    the one warning :class:`FailingWorkflowTasks` writes.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not _TRACKERS:
            return True
        if getattr(record, "__temporal_error_identifier", None) == _TASK_FAILURE:
            details = getattr(record, "temporal_workflow", None) or {}
            run_id = details.get("run_id")
            if run_id is None:
                return True
            if not _tracked(run_id) and record.exc_info:
                if len(_TRACEBACKS) >= 1000:
                    _TRACEBACKS.pop(next(iter(_TRACEBACKS)))
                _TRACEBACKS[run_id] = record.exc_info
            return False
        # Core's line (forwarded with its target first: "[sdk_core::...] Failing workflow task").
        return "Failing workflow task" not in record.getMessage()


_QUIET = QuietRetries()


def install_quiet_retries() -> None:
    """Put :class:`QuietRetries` on temporalio's loggers (once)."""
    for name in (_PYTHON_LOGGER, *_CORE_LOGGERS):
        log = logging.getLogger(name)
        if _QUIET not in log.filters:
            log.addFilter(_QUIET)


class WatchingRunner(WorkflowRunner):
    """A workflow runner that reports to ``tracker`` how each workflow task of ``inner`` ends.

    ``contexts_matter`` False (the worker's data converter has no payload codec and no external
    storage): the serialization and store contexts temporalio asks an instance for, per payload
    of every activation and completion, are not computed. temporalio uses them only to bind the
    codec and the external storage to a command, and without either the payloads pass through
    unchanged whatever the context; in the sandbox each answer runs code inside it (about a
    tenth of a worker's CPU on the expense example, ``docs/performance.md``).
    """

    def __init__(self, inner: WorkflowRunner, tracker: FailingWorkflowTasks) -> None:
        self.inner = inner
        self.tracker = tracker
        # Set by create_worker once the worker's data converter is known (before any instance).
        self.contexts_matter = True
        install_quiet_retries()

    def prepare_workflow(self, defn: temporalio.workflow._Definition) -> None:
        self.inner.prepare_workflow(defn)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        watched = _WatchedInstance if self.contexts_matter else _ContextFreeInstance
        return watched(self.inner.create_instance(det), det.info, self.tracker)

    def set_worker_level_failure_exception_types(self, types: Sequence[type[BaseException]]) -> None:
        self.inner.set_worker_level_failure_exception_types(types)


class _WatchedInstance(WorkflowInstance):
    def __init__(
        self, inner: WorkflowInstance, info: temporalio.workflow.Info, tracker: FailingWorkflowTasks
    ) -> None:
        self.inner = inner
        self.info = info
        self.tracker = tracker
        self.completed = False  # the last activation completed new work (not a replay)

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        evicted = next((job.remove_from_cache for job in act.jobs if job.HasField("remove_from_cache")), None)
        if evicted is None and self.completed:
            # Still cached and activated again: the task this instance completed was accepted
            # (a failed one would have evicted it first).
            self.tracker.succeeded(self.info.run_id)
        self.completed = False
        try:
            completion = self.inner.activate(act)
        except BaseException as exc:
            self.tracker.failed(self.info, f"{type(exc).__name__}: {exc}", exc_info=exc)
            raise
        if evicted is not None:
            if evicted.reason == _NONDETERMINISM:  # core compared the commands with history
                self.tracker.failed(
                    self.info, _first_line(evicted.message), _TRACEBACKS.pop(self.info.run_id, None)
                )
        elif completion.HasField("failed"):  # an exception in workflow code
            message = _first_line(completion.failed.failure.message)
            self.tracker.failed(self.info, message, _TRACEBACKS.pop(self.info.run_id, None))
        elif not act.is_replaying:
            self.completed = True
        return completion

    def get_serialization_context(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.get_serialization_context(*args, **kwargs)

    def get_external_store_context(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.get_external_store_context(*args, **kwargs)

    def get_info(self) -> temporalio.workflow.Info:
        return self.inner.get_info()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


_NO_STORE = StorageDriverStoreContext(target=None)


class _ContextFreeInstance(_WatchedInstance):
    """A watched instance of a worker without payload codec or external storage: the contexts
    would change nothing (see :class:`WatchingRunner`), so none is computed."""

    def get_serialization_context(self, *args: Any, **kwargs: Any) -> Any:
        return None  # temporalio then uses its context-free converter: no codec either way

    def get_external_store_context(self, *args: Any, **kwargs: Any) -> Any:
        return _NO_STORE


_CORE_MESSAGE = re.compile(r'message: "((?:[^"\\]|\\.)*)"')


def _first_line(text: str) -> str:
    """The failure's own message: core wraps it in a debug dump of its failure structure."""
    found = _CORE_MESSAGE.search(text)
    if found is not None:
        text = found.group(1)
    lines = text.strip().splitlines()
    return (lines[0] if lines else "workflow task failed")[:500]
