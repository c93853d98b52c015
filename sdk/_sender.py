"""The command side of an instance handle: check with the shared policy, sign, send.

Every command is checked here first, with the same policy functions the workflow uses
(``sdk._policy``), against the task's mirror row or the workflow's own state (the ``state``
query): the task exists in the caller's tenant and is pending, the user may act, the data fits
the form and can be stored, the payload is within the size limit. Only then is anything sent,
signed with the application's key (:class:`CommandTrust`); task commands go as Temporal updates,
so the caller learns synchronously that the workflow accepted them. The workflow checks again on
receipt, believing only the signed identity.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from ._credentials import CommandTrust
from ._definition import HumanStep
from ._errors import InstanceNotFoundError, PermissionDeniedError, Refusal, TaskRejectedError
from ._identity import Identity
from ._policy import (
    check_control,
    check_form,
    check_priority,
    check_size,
    check_task_command,
    check_text,
)
from ._registry import registry
from ._types import (
    ControlCommand,
    InstanceAction,
    InstanceState,
    TaskAction,
    TaskCommand,
    TaskCompletion,
    TaskInfo,
    TaskStatus,
    TaskVote,
)
from .protocol import CANCEL_SIGNAL, COMPLETE_SIGNAL, PAUSE_SIGNAL, RESUME_SIGNAL, STATE_QUERY, task_update

if TYPE_CHECKING:
    from .mirror import MirrorQueries

__all__ = ["CommandSender", "CommandTrust", "not_found", "translate_rejection"]


def translate_rejection(err: BaseException) -> Exception:
    """Map a workflow's refusal (its :class:`sdk.ErrorKind`) onto the SDK's exceptions."""
    cause = err.cause if isinstance(err, WorkflowUpdateFailedError) else err
    refusal = Refusal.from_application_error(cause) if isinstance(cause, ApplicationError) else None
    if refusal is None:
        return TaskRejectedError(str(cause or err))
    return refusal.to_exception()


def not_found(exc: RPCError, what: str) -> Exception:
    """``InstanceNotFoundError`` for Temporal's NOT_FOUND, else the error itself."""
    if exc.status == RPCStatusCode.NOT_FOUND:
        return InstanceNotFoundError(f"no workflow instance {what}")
    return exc


class _AnyForm(BaseModel, extra="allow"):
    """Stands for a form this process does not know: the workflow validates the fields."""


class CommandSender:
    """The commands of :class:`sdk.InstanceHandle` (its base class)."""

    _handle: WorkflowHandle[Any, Any]
    _queries: MirrorQueries | None
    _trust: CommandTrust
    tenant_id: str | None

    @property
    def id(self) -> str:
        """The Temporal workflow id."""
        return self._handle.id

    @property
    def run_id(self) -> str | None:
        """The Temporal run id of the first run, when known."""
        handle = self._handle
        return handle.first_execution_run_id or handle.result_run_id or handle.run_id

    @property
    def instance_id(self) -> uuid.UUID | None:
        """The instance's id in the SQL mirror (derived from the run id)."""
        from ._ids import instance_id_for

        return instance_id_for(self.run_id) if self.run_id else None

    # -- checks before sending ------------------------------------------------------------

    async def _task_view(
        self, task_id: str | uuid.UUID, *, pending: bool
    ) -> tuple[TaskInfo | None, str | None]:
        """The task (None: not in this instance) and its instance's tenant, for the policy."""
        if pending:
            mirrored = await self._mirrored_pending_task(task_id)
            if mirrored is not None:
                return mirrored
        try:
            state: InstanceState = await self._handle.query(STATE_QUERY, result_type=InstanceState)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None, None
            raise
        found = next((t for t in state.tasks if t.task_id == str(task_id)), None)
        return found, state.tenant_id

    async def _mirrored_pending_task(self, task_id: str | uuid.UUID) -> tuple[TaskInfo, str | None] | None:
        """The task as its mirror row shows it, when that row is pending in this instance.

        None (ask the workflow) without a mirror, or when the row is missing, in another
        instance or not pending: the workflow's answer decides those.
        """
        if self._queries is None:
            return None
        try:
            row = await self._queries.get_task(task_id)
        except Exception:  # not there, or the database does not answer: ask the workflow
            return None
        run_instance = self.instance_id
        if row.workflow_id != self.id or (run_instance is not None and row.instance_id != run_instance):
            return None  # another instance's, or an earlier run's of the same workflow id
        if row.status is not TaskStatus.PENDING:
            return None
        step = registry.steps.get(row.step_name)
        votes = await self._mirrored_votes(row.id) if row.quorum is not None else []
        if votes is None:
            return None
        task = TaskInfo(
            task_id=str(row.id),
            step_execution_id=str(row.step_execution_id),
            step_name=row.step_name,
            title=row.title,
            description=row.description,
            form_name=step.form.__name__ if isinstance(step, HumanStep) else "",
            form_schema=row.form_schema or {},
            assignee_id=row.assignee_id,
            assignee_group=row.assignee_group,
            claimed_by=row.claimed_by,
            claimed_at=row.claimed_at,
            require_claim=row.require_claim,
            status=row.status,
            created_at=row.created_at,
            due_at=row.due_at,
            reminder_at=row.reminder_at,
            quorum=row.quorum,
            reject_on=row.reject_on,
            voters=row.voters,
            votes=votes,
            excluded_users=row.excluded_users or {},
            priority=row.priority,
            follow_up_at=row.follow_up_at,
            on_behalf_of=row.on_behalf_of,
            voters_on_behalf=row.voters_on_behalf or {},
        )
        return task, row.tenant_id

    async def _mirrored_votes(self, task_id: uuid.UUID) -> list[TaskVote] | None:
        """The votes cast on a quorum task, from the mirror (None: ask the workflow)."""
        assert self._queries is not None
        try:
            page = await self._queries.task_votes(task_id, limit=1000)
        except Exception:  # the database does not answer: ask the workflow
            return None
        return [
            TaskVote(
                vote_id=str(row.id),
                voter=row.voter,
                approved=bool(row.approved),
                data=row.form_data or {},
                comment=row.comment,
                voted_at=row.voted_at,
                on_behalf_of=row.on_behalf_of,
            )
            for row in page.items
            if row.voted_at is not None and row.approved is not None
        ]

    async def _checked_task(
        self, action: TaskAction, task_id: str | uuid.UUID, identity: Identity, **fields: Any
    ) -> TaskInfo:
        """The task, once the shared policy (``sdk._policy``) allows ``identity`` to act on it."""
        task, tenant = await self._task_view(task_id, pending=action is not TaskAction.COMMENT)
        try:
            return check_task_command(
                str(task_id), task, action, identity, instance_tenant_id=tenant, **fields
            )
        except Refusal as refusal:
            raise refusal.to_exception() from None

    async def _send_update(self, action: TaskAction, payload: dict[str, Any]) -> TaskInfo:
        signed = self._signed(action.value, payload)
        try:
            task: TaskInfo = await self._handle.execute_update(
                task_update(action), signed, result_type=TaskInfo
            )
            return task
        except WorkflowUpdateFailedError as exc:
            raise translate_rejection(exc) from exc
        except RPCError as exc:
            raise not_found(exc, self.id) from exc

    def _signed(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            check_size(payload, f"the {action} command")
        except Refusal as refusal:
            raise refusal.to_exception() from None
        return self._trust.sign(action, self.id, self.run_id, payload)

    async def _checked_completion(
        self,
        task_id: str | uuid.UUID,
        data: BaseModel | dict[str, Any],
        identity: Identity,
        comment: str | None,
        action: TaskAction = TaskAction.COMPLETE,
    ) -> TaskCompletion:
        """Every check the client can make before it sends a completion (or a vote)."""
        # The Python values first: a JSON dump would already have turned NaN into null.
        raw = data.model_dump() if isinstance(data, BaseModel) else data
        task = await self._checked_task(action, task_id, identity)
        step = registry.steps.get(task.step_name)
        try:
            check_text(comment=comment)
            check_form(step.form if isinstance(step, HumanStep) else _AnyForm, raw)
        except Refusal as refusal:
            raise refusal.to_exception() from None
        payload_data = data.model_dump(mode="json") if isinstance(data, BaseModel) else data
        return TaskCompletion(
            task_id=task.task_id,
            user=identity.user,
            data=payload_data,
            comment=comment,
            groups=list(identity.groups),
            admin=identity.admin,
            tenant_id=identity.tenant_id,
        )

    async def complete_task(
        self,
        task_id: str | uuid.UUID,
        data: BaseModel | dict[str, Any],
        *,
        user: str,
        groups: Sequence[str] | None = None,
        comment: str | None = None,
        admin: bool | None = None,
    ) -> TaskInfo:
        """Complete a human task and return it once the workflow has accepted it.

        ``groups`` and ``admin`` are the caller's word only when the client has no identity
        provider; with one, pass ``user`` alone.

        Raises:
            TaskNotFoundError, TaskNotPendingError, PermissionDeniedError,
            FormValidationError, InvalidInputError, PayloadTooLargeError: Checked before
            anything is sent.
            UnauthenticatedCommandError: The workers could not verify the client's signature.
            TaskRejectedError: The workflow refused it (its state changed meanwhile).
        """
        identity = await self._trust.identity(user, groups, admin, self.tenant_id)
        completion = await self._checked_completion(task_id, data, identity, comment)
        return await self._send_update(TaskAction.COMPLETE, completion.model_dump(mode="json"))

    async def signal_complete_task(
        self,
        task_id: str | uuid.UUID,
        data: BaseModel | dict[str, Any],
        *,
        user: str,
        groups: Sequence[str] | None = None,
        comment: str | None = None,
        admin: bool | None = None,
    ) -> None:
        """Like :meth:`complete_task`, but sends the ``complete_task`` signal and returns at once."""
        identity = await self._trust.identity(user, groups, admin, self.tenant_id)
        completion = await self._checked_completion(task_id, data, identity, comment)
        signed = self._signed(TaskAction.COMPLETE.value, completion.model_dump(mode="json"))
        await self._handle.signal(COMPLETE_SIGNAL, signed)

    async def vote_task(
        self,
        task_id: str | uuid.UUID,
        data: BaseModel | dict[str, Any],
        *,
        user: str,
        groups: Sequence[str] | None = None,
        comment: str | None = None,
    ) -> TaskInfo:
        """Vote on a quorum task with the step's form; returns the task once the vote counted.

        Each eligible user votes once; the task closes when the vote decides it (its
        ``status`` and ``form_data`` say how).

        Raises:
            TaskNotFoundError, TaskNotPendingError, FormValidationError, InvalidInputError:
            Checked before anything is sent.
            PermissionDeniedError: Not one of the voters, voted already, or kept out by
                separation of duties.
            TaskRejectedError: The workflow refused it (its state changed meanwhile).
        """
        identity = await self._trust.identity(user, groups, None, self.tenant_id)
        ballot = await self._checked_completion(task_id, data, identity, comment, TaskAction.VOTE)
        return await self._send_update(TaskAction.VOTE, ballot.model_dump(mode="json"))

    async def prioritize_task(
        self,
        task_id: str | uuid.UUID,
        *,
        user: str,
        priority: int | None = None,
        follow_up_at: datetime | None = None,
        reason: str | None = None,
        groups: Sequence[str] | None = None,
        admin: bool | None = None,
    ) -> TaskInfo:
        """Change a task's priority (0-100) and/or follow-up date (the assignee, the claim
        holder or an administrator); audited with ``reason``.

        Raises:
            InvalidInputError: Neither given, a priority outside 0-100, a naive datetime.
            PermissionDeniedError: Not the assignee, claim holder or an administrator.
        """
        try:
            check_priority(priority, follow_up_at)
        except Refusal as refusal:
            raise refusal.to_exception() from None
        fields = {"priority": priority, "follow_up_at": follow_up_at, "reason": reason}
        return await self._command(TaskAction.PRIORITIZE, task_id, user, groups, admin, **fields)

    async def _command(
        self,
        action: TaskAction,
        task_id: str | uuid.UUID,
        user: str,
        groups: Sequence[str] | None,
        admin: bool | None,
        **fields: Any,
    ) -> TaskInfo:
        identity = await self._trust.identity(user, groups, admin, self.tenant_id)
        checked = {k: v for k, v in fields.items() if k not in ("priority", "follow_up_at")}
        task = await self._checked_task(action, task_id, identity, **checked)
        command = TaskCommand(
            task_id=task.task_id,
            user=identity.user,
            groups=list(identity.groups),
            admin=identity.admin,
            tenant_id=identity.tenant_id,
            **fields,
        )
        return await self._send_update(action, command.model_dump(mode="json"))

    async def claim_task(
        self,
        task_id: str | uuid.UUID,
        *,
        user: str,
        groups: Sequence[str] | None = None,
        admin: bool | None = None,
    ) -> TaskInfo:
        """Claim a group task; of two users claiming at once exactly one wins.

        Raises:
            TaskClaimConflictError: Someone else holds the claim.
        """
        return await self._command(TaskAction.CLAIM, task_id, user, groups, admin)

    async def release_task(
        self,
        task_id: str | uuid.UUID,
        *,
        user: str,
        groups: Sequence[str] | None = None,
        admin: bool | None = None,
    ) -> TaskInfo:
        """Release a claimed task back to its group (the claimant or an administrator)."""
        return await self._command(TaskAction.RELEASE, task_id, user, groups, admin)

    async def reassign_task(
        self,
        task_id: str | uuid.UUID,
        *,
        user: str,
        to_user: str | None = None,
        to_group: str | None = None,
        reason: str,
        groups: Sequence[str] | None = None,
        admin: bool | None = None,
        on_behalf_of: str | None = None,
    ) -> TaskInfo:
        """Reassign a task to another user and/or group, with a reason (audited).

        ``on_behalf_of`` marks a delegation's handover: the absent user the task is assigned
        to, shown as "on behalf of" on the task afterwards.

        Raises:
            InvalidInputError: Neither ``to_user`` nor ``to_group`` given, or no reason.
        """
        fields = {"to_user": to_user, "to_group": to_group, "reason": reason, "on_behalf_of": on_behalf_of}
        return await self._command(TaskAction.REASSIGN, task_id, user, groups, admin, **fields)

    async def comment_task(
        self,
        task_id: str | uuid.UUID,
        body: str,
        *,
        user: str,
        groups: Sequence[str] | None = None,
        admin: bool | None = None,
    ) -> TaskInfo:
        """Add a comment to a task (anyone who may see it).

        Raises:
            InvalidInputError: An empty body, or one no database can store.
        """
        return await self._command(TaskAction.COMMENT, task_id, user, groups, admin, body=body)

    async def escalate_task(
        self,
        task_id: str | uuid.UUID,
        *,
        user: str,
        reason: str | None = None,
        groups: Sequence[str] | None = None,
        admin: bool | None = None,
    ) -> TaskInfo:
        """Move a task to the next link of its escalation chain now (audited as an escalation).

        The assignee, the holder of its claim or an administrator may; the task is then due
        when that link says.

        Raises:
            InvalidInputError: The task's step has no chain, or its last link was applied.
        """
        return await self._command(TaskAction.ESCALATE, task_id, user, groups, admin, reason=reason)

    # -- the instance ---------------------------------------------------------------------

    async def _control(
        self, action: InstanceAction, signal: str, by: str | None, reason: str | None, admin: bool | None
    ) -> None:
        # Like the task commands: the provider says the admin flag when there is one (and
        # refuses one from the caller); else the application does, so an administrator of all
        # tenants can control any tenant's instance.
        if self._trust.identity_provider is not None:
            if not by:
                raise PermissionDeniedError(f"{action.value} needs by= (the user acting)")
            identity = await self._trust.identity(by, None, admin, self.tenant_id)
        else:
            identity = await self._trust.identity(by or "(unnamed)", (), admin, self.tenant_id)
        try:
            check_control(identity, instance_tenant_id=identity.tenant_id, reason=reason)
        except Refusal as refusal:
            raise refusal.to_exception() from None
        await self._ensure_visible()
        command = ControlCommand(
            user=by,
            groups=list(identity.groups),
            admin=identity.admin,
            tenant_id=identity.tenant_id,
            reason=reason,
        )
        signed = self._signed(action.value, command.model_dump(mode="json"))
        try:
            await self._handle.signal(signal, signed)
        except RPCError as exc:
            raise not_found(exc, self.id) from exc

    async def _ensure_visible(self) -> None:
        """Refuse (not found) an instance the handle's tenant may not command.

        A command carries the handle's tenant: without one it reaches only instances started
        without a tenant; ``sdk.ALL_TENANTS`` reaches every instance.
        """
        try:
            desc = await self._handle.describe()
        except RPCError as exc:
            raise not_found(exc, self.id) from exc
        tenant = (await desc.memo()).get("tenant_id")
        if not Identity(user="-", admin=True, tenant_id=self.tenant_id).sees_tenant(tenant):
            raise InstanceNotFoundError(f"no workflow instance {self.id}")

    async def cancel(
        self, *, reason: str | None = None, by: str | None = None, admin: bool | None = None
    ) -> None:
        """Request cancellation; pending tasks become canceled and the instance CANCELED.

        ``admin`` (without an identity provider) says ``by`` is an administrator: with the
        handle's tenant ``sdk.ALL_TENANTS`` it may control any tenant's instance.
        """
        await self._control(InstanceAction.CANCEL, CANCEL_SIGNAL, by, reason, admin)
        try:
            await self._handle.cancel(reason=reason or "")
        except RPCError as exc:
            raise not_found(exc, self.id) from exc

    async def pause(
        self, *, by: str | None = None, reason: str | None = None, admin: bool | None = None
    ) -> None:
        """Hold the instance before its next step (status PAUSED, WorkflowPaused); ``admin``
        as for :meth:`cancel`."""
        await self._control(InstanceAction.PAUSE, PAUSE_SIGNAL, by, reason, admin)

    async def resume(self, *, by: str | None = None, admin: bool | None = None) -> None:
        """Let a paused instance go on (WorkflowResumed); ``admin`` as for :meth:`cancel`."""
        await self._control(InstanceAction.RESUME, RESUME_SIGNAL, by, None, admin)
