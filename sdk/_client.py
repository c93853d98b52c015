"""The client: start instances, complete tasks, cancel, pause, describe.

Commands are checked here first (the task exists and is pending, the user may act, the data
fits the form) so bad input raises a specific error and nothing reaches Temporal. The
workflow checks again on receipt, since any Temporal client can send the same signals.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from ._definition import HumanStep, WorkflowDefinition
from ._errors import (
    FormValidationError,
    InstanceNotFoundError,
    MirrorUnavailableError,
    PermissionDeniedError,
    TaskNotFoundError,
    TaskNotPendingError,
    TaskRejectedError,
)
from ._ids import instance_id_for
from ._policy import denial_reason
from ._registry import registry
from ._types import InstanceState, TaskAction, TaskCompletion, TaskInfo, TaskStatus, WorkflowStatus

__all__ = ["DEFAULT_TASK_QUEUE", "InstanceDescription", "InstanceHandle", "WorkflowClient"]

DEFAULT_TASK_QUEUE = "durable-workflows"
R = TypeVar("R")

_TEMPORAL_STATUS = {
    WorkflowExecutionStatus.RUNNING: WorkflowStatus.RUNNING,
    WorkflowExecutionStatus.COMPLETED: WorkflowStatus.COMPLETED,
    WorkflowExecutionStatus.FAILED: WorkflowStatus.FAILED,
    WorkflowExecutionStatus.CANCELED: WorkflowStatus.CANCELED,
    WorkflowExecutionStatus.TERMINATED: WorkflowStatus.TERMINATED,
    WorkflowExecutionStatus.TIMED_OUT: WorkflowStatus.TIMED_OUT,
    WorkflowExecutionStatus.CONTINUED_AS_NEW: WorkflowStatus.COMPLETED,
}


@dataclass(frozen=True)
class InstanceDescription:
    """An instance as Temporal describes it, with the workflow's own view when it runs."""

    workflow_id: str
    run_id: str
    instance_id: uuid.UUID
    workflow_type: str
    workflow_name: str
    workflow_version: str | None
    status: WorkflowStatus
    start_time: datetime | None
    close_time: datetime | None
    tenant_id: str | None
    created_by: str | None
    current_step: str | None
    pending_tasks: list[TaskInfo]


def _form_errors(form: type[BaseModel], exc: ValidationError) -> FormValidationError:
    return FormValidationError.from_pydantic(form.__name__, exc)


def _translate_rejection(err: BaseException) -> Exception:
    """Map a workflow's refusal (an ApplicationError type name) onto the SDK's exceptions."""
    cause = err.cause if isinstance(err, WorkflowUpdateFailedError) else err
    if not isinstance(cause, ApplicationError):
        return TaskRejectedError(str(cause or err))
    details = cause.details[0] if cause.details else {}
    errors = details.get("errors", []) if isinstance(details, dict) else []
    message = cause.message
    if cause.type == "FormValidationError":
        form_name = message.rsplit(" ", 1)[-1]
        return FormValidationError(form_name, errors)
    mapped: dict[str | None, type[Exception]] = {
        "TaskNotFoundError": TaskNotFoundError,
        "PermissionDeniedError": PermissionDeniedError,
    }
    if cause.type == "TaskNotPendingError" and isinstance(details, dict):
        return TaskNotPendingError(details.get("task_id"), str(details.get("status")))
    return mapped.get(cause.type, TaskRejectedError)(message)


class InstanceHandle(Generic[R]):
    """One workflow instance: its result, state, tasks and control commands."""

    def __init__(
        self,
        client: WorkflowClient,
        handle: WorkflowHandle[Any, R],
        definition: WorkflowDefinition[..., R] | None = None,
    ) -> None:
        self._client = client
        self._handle = handle
        self.definition = definition

    @property
    def id(self) -> str:
        """The Temporal workflow id."""
        return self._handle.id

    @property
    def run_id(self) -> str | None:
        """The Temporal run id of the first run, when known."""
        return self._handle.first_execution_run_id or self._handle.result_run_id or self._handle.run_id

    @property
    def instance_id(self) -> uuid.UUID | None:
        """The instance's id in the SQL mirror (derived from the run id)."""
        return instance_id_for(self.run_id) if self.run_id else None

    @property
    def temporal(self) -> WorkflowHandle[Any, R]:
        """The underlying temporalio handle."""
        return self._handle

    async def result(self) -> R:
        """Wait for the instance to finish; raises ``WorkflowFailureError`` if it failed."""
        return await self._handle.result()

    async def state(self) -> InstanceState:
        """The workflow's own view (the ``state`` query): status, current step, tasks.

        Raises:
            InstanceNotFoundError: No such workflow.
        """
        try:
            return await self._handle.query("state", result_type=InstanceState)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise InstanceNotFoundError(f"no workflow instance {self.id}") from exc
            raise

    async def describe(self) -> InstanceDescription:
        """Temporal's description of the instance, refined by the ``state`` query while it runs."""
        try:
            desc = await self._handle.describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise InstanceNotFoundError(f"no workflow instance {self.id}") from exc
            raise
        status = (
            _TEMPORAL_STATUS.get(desc.status, WorkflowStatus.RUNNING)
            if desc.status
            else WorkflowStatus.RUNNING
        )
        name, _, version = desc.workflow_type.partition("@")
        memo = await desc.memo()
        state: InstanceState | None = None
        if status is WorkflowStatus.RUNNING:
            state = await self.state()
            status = state.status if state.status is not WorkflowStatus.PENDING else status
        return InstanceDescription(
            workflow_id=desc.id,
            run_id=desc.run_id,
            instance_id=instance_id_for(desc.run_id),
            workflow_type=desc.workflow_type,
            workflow_name=name,
            workflow_version=version or None,
            status=status,
            start_time=desc.start_time,
            close_time=desc.close_time,
            tenant_id=memo.get("tenant_id"),
            created_by=memo.get("created_by"),
            current_step=state.current_step if state else None,
            pending_tasks=state.pending_tasks if state else [],
        )

    async def _checked_completion(
        self,
        task_id: str | uuid.UUID,
        data: BaseModel | dict[str, Any],
        user: str,
        groups: Sequence[str],
        comment: str | None,
        admin: bool,
    ) -> TaskCompletion:
        """Every check the client can make before sending a completion."""
        payload_data = data.model_dump(mode="json") if isinstance(data, BaseModel) else data
        if not isinstance(payload_data, dict):
            raise FormValidationError(
                "form",
                [{"field": "__root__", "message": "form data must be a dict", "type": "dict_type"}],
            )
        if not user:
            raise PermissionDeniedError("a user is required to complete a task")
        state = await self.state()
        task = next((t for t in state.tasks if t.task_id == str(task_id)), None)
        if task is None:
            raise TaskNotFoundError(f"no task {task_id} in instance {self.id}")
        if task.status is not TaskStatus.PENDING:
            raise TaskNotPendingError(task.task_id, task.status.value)
        reason = denial_reason(task, TaskAction.COMPLETE, user, groups, admin)
        if reason is not None:
            raise PermissionDeniedError(reason)
        step = registry.steps.get(task.step_name)
        if isinstance(step, HumanStep):
            try:
                step.form.model_validate(payload_data)
            except ValidationError as exc:
                raise _form_errors(step.form, exc) from None
        return TaskCompletion(
            task_id=task.task_id,
            user=user,
            data=payload_data,
            comment=comment,
            groups=list(groups),
            admin=admin,
        )

    async def complete_task(
        self,
        task_id: str | uuid.UUID,
        data: BaseModel | dict[str, Any],
        *,
        user: str,
        groups: Sequence[str] = (),
        comment: str | None = None,
        admin: bool = False,
    ) -> TaskInfo:
        """Complete a human task and return it once the workflow has accepted it.

        Uses the ``complete_task_update`` update, so the answer is synchronous.

        Raises:
            TaskNotFoundError, TaskNotPendingError, PermissionDeniedError,
            FormValidationError: Checked before anything is sent.
            TaskRejectedError: The workflow refused it (its state changed meanwhile).
        """
        completion = await self._checked_completion(task_id, data, user, groups, comment, admin)
        try:
            return await self._handle.execute_update(
                "complete_task_update", completion.model_dump(mode="json"), result_type=TaskInfo
            )
        except WorkflowUpdateFailedError as exc:
            raise _translate_rejection(exc) from exc

    async def signal_complete_task(
        self,
        task_id: str | uuid.UUID,
        data: BaseModel | dict[str, Any],
        *,
        user: str,
        groups: Sequence[str] = (),
        comment: str | None = None,
        admin: bool = False,
    ) -> None:
        """Like :meth:`complete_task`, but sends the ``complete_task`` signal and returns at once."""
        completion = await self._checked_completion(task_id, data, user, groups, comment, admin)
        await self._handle.signal("complete_task", completion.model_dump(mode="json"))

    async def cancel(self, *, reason: str | None = None, by: str | None = None) -> None:
        """Request cancellation; pending tasks become canceled and the instance CANCELED."""
        try:
            await self._handle.signal("cancel_requested", {"reason": reason, "by": by})
            await self._handle.cancel(reason=reason or "")
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise InstanceNotFoundError(f"no running workflow instance {self.id}") from exc
            raise

    async def pause(self, *, by: str | None = None, reason: str | None = None) -> None:
        """Hold the instance before its next step (status PAUSED)."""
        await self._handle.signal("pause", {"by": by, "reason": reason})

    async def resume(self, *, by: str | None = None) -> None:
        """Let a paused instance go on."""
        await self._handle.signal("resume", {"by": by})


class WorkflowClient:
    """The application's entry point: start instances, act on tasks, and (with a database) query.

    Create it with :meth:`connect`.
    """

    def __init__(self, temporal: Client, *, task_queue: str = DEFAULT_TASK_QUEUE) -> None:
        self._temporal = temporal
        self.task_queue = task_queue

    @classmethod
    async def connect(
        cls,
        target: str = "localhost:7233",
        *,
        namespace: str = "default",
        task_queue: str = DEFAULT_TASK_QUEUE,
        api_key: str | None = None,
        tls: bool = False,
        **connect_options: Any,
    ) -> WorkflowClient:
        """Connect to Temporal with the pydantic data converter.

        Args:
            target: ``host:port`` of the Temporal frontend.
            namespace: Temporal namespace.
            task_queue: Where new instances are started (the worker's task queue).
            api_key: Temporal Cloud API key.
            tls: Use TLS (implied by an API key).
            **connect_options: Passed to ``temporalio.client.Client.connect``.
        """
        temporal = await Client.connect(
            target,
            namespace=namespace,
            data_converter=pydantic_data_converter,
            api_key=api_key,
            tls=tls or bool(api_key),
            **connect_options,
        )
        return cls(temporal, task_queue=task_queue)

    @property
    def temporal(self) -> Client:
        """The underlying temporalio client."""
        return self._temporal

    def _definition(
        self, workflow: WorkflowDefinition[..., R] | str, version: str | None
    ) -> WorkflowDefinition[..., R]:
        if isinstance(workflow, WorkflowDefinition):
            if version is None or version == workflow.version:
                return workflow
            workflow = workflow.name
        return registry.get(workflow, version)  # type: ignore[return-value]

    async def start(
        self,
        workflow: WorkflowDefinition[..., R] | str,
        *args: Any,
        id: str | None = None,
        version: str | None = None,
        tenant_id: str | None = None,
        created_by: str | None = None,
        task_queue: str | None = None,
    ) -> InstanceHandle[R]:
        """Start an instance and return its handle.

        Args:
            workflow: A ``@workflow`` definition (that exact version) or a workflow name (its
                active version).
            *args: The workflow's arguments (models, or dicts validated into them here).
            id: The Temporal workflow id (default ``<name>-<uuid4>``).
            version: Start this version instead.
            tenant_id: The tenant the instance belongs to.
            created_by: The user who starts it.
            task_queue: Override the client's task queue.

        Raises:
            WorkflowNotFoundError: No such workflow or version is registered.
            FormValidationError: An argument does not validate against its model.
            TypeError: Wrong number of arguments.
        """
        definition = self._definition(workflow, version)
        checked = self._check_args(definition, args)
        workflow_id = id or f"{definition.name}-{uuid.uuid4()}"
        memo = {k: v for k, v in (("tenant_id", tenant_id), ("created_by", created_by)) if v is not None}
        handle: WorkflowHandle[Any, R] = await self._temporal.start_workflow(
            definition.workflow_type,
            args=checked,
            id=workflow_id,
            task_queue=task_queue or self.task_queue,
            memo=memo or None,
            result_type=definition.return_type,
        )
        return InstanceHandle(self, handle, definition)

    @staticmethod
    def _check_args(definition: WorkflowDefinition[..., Any], args: tuple[Any, ...]) -> list[Any]:
        if len(args) != len(definition.param_types):
            raise TypeError(
                f"workflow {definition.name!r} takes {len(definition.param_types)} argument(s), got {len(args)}"
            )
        checked: list[Any] = []
        for arg, typ in zip(args, definition.param_types, strict=True):
            if isinstance(typ, type) and issubclass(typ, BaseModel) and not isinstance(arg, typ):
                try:
                    arg = typ.model_validate(arg)
                except ValidationError as exc:
                    raise _form_errors(typ, exc) from None
            checked.append(arg)
        return checked

    def get_instance(self, workflow_id: str, run_id: str | None = None) -> InstanceHandle[Any]:
        """A handle to an existing instance by its workflow id."""
        handle = self._temporal.get_workflow_handle(workflow_id, run_id=run_id)
        definition = None
        return InstanceHandle(self, handle, definition)

    async def complete_task(
        self,
        task_id: str | uuid.UUID,
        data: BaseModel | dict[str, Any],
        *,
        user: str,
        workflow_id: str | None = None,
        groups: Sequence[str] = (),
        comment: str | None = None,
        admin: bool = False,
    ) -> TaskInfo:
        """Complete a human task (see :meth:`InstanceHandle.complete_task`).

        Raises:
            MirrorUnavailableError: No ``workflow_id`` and no database to look the task up in.
        """
        if workflow_id is None:
            raise MirrorUnavailableError(
                "complete_task needs workflow_id= (or a client connected with database_url=)"
            )
        return await self.get_instance(workflow_id).complete_task(
            task_id, data, user=user, groups=groups, comment=comment, admin=admin
        )

    async def cancel(self, workflow_id: str, *, reason: str | None = None, by: str | None = None) -> None:
        """Cancel an instance by workflow id."""
        await self.get_instance(workflow_id).cancel(reason=reason, by=by)

    async def describe(self, workflow_id: str) -> InstanceDescription:
        """Describe an instance by workflow id."""
        return await self.get_instance(workflow_id).describe()

    async def result(self, workflow_id: str) -> Any:
        """Wait for an instance's result by workflow id."""
        return await self.get_instance(workflow_id).result()
