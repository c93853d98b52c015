"""Commands from outside (signals and updates): parsed, verified, checked, then applied.

Runs inside the Temporal sandbox. Any Temporal client can send any payload, so every handler
takes its arguments as they come and refuses what it cannot use itself: a wrong number of
arguments, a payload that is not an object, one too large, fields of the wrong type, values no
mirror can store, an identity it cannot verify. A refusal is a :class:`sdk.Refusal`, which an
update turns into a typed failure its caller sees and a signal records as a rejection; nothing
changes and the instance keeps working.

Who sent a command is believed only when the client's signature verifies (``sdk._signing``).
An update is verified in its validator, which Temporal does not run again on replay; a signal
through a local activity, whose verdict history records. So replaying a history never needs
the keys it was verified with, and keys can be rotated out freely.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID, uuid5

from pydantic import BaseModel, ValidationError
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from . import events as ev
from ._errors import ErrorKind, Refusal, field_errors
from ._escalation import ChainState, EscalationChain
from ._identity import Identity
from ._nonces import SeenSignatures, replayed, signature_of
from ._outbox import EventOutbox
from ._policy import check_control, check_form, check_size, check_task_command, check_text
from ._types import (
    ControlCommand,
    Rejection,
    StepStatus,
    TaskAction,
    TaskCommand,
    TaskComment,
    TaskCompletion,
    TaskInfo,
    TaskStatus,
    WorkflowStatus,
)
from .protocol import REPLAY_GUARD_PATCH, SIGNED_COMMANDS_PATCH, VERIFY_ACTIVITY

if TYPE_CHECKING:
    from ._signing import Keyring

__all__ = ["MAX_REJECTIONS", "TaskCommands", "one_payload"]

MAX_REJECTIONS = 50
"""The rejections an instance keeps (the newest)."""

M = TypeVar("M", bound=BaseModel)


def one_payload(args: tuple[Any, ...], what: str) -> dict[str, Any]:
    """The single object a handler expects; raise :class:`Refusal` for any other shape."""
    if len(args) != 1:
        raise Refusal(
            ErrorKind.INVALID_COMMAND, f"{what} takes one payload object, got {len(args)} arguments"
        )
    payload = args[0]
    if not isinstance(payload, dict):
        raise Refusal(
            ErrorKind.INVALID_COMMAND, f"{what} payload must be an object, got {type(payload).__name__}"
        )
    check_size(payload, f"the {what} payload")
    return payload


def _parse(model: type[M], payload: dict[str, Any], what: str) -> M:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise Refusal(ErrorKind.INVALID_COMMAND, f"malformed {what} payload", field_errors(exc)) from None


def _identity(command: TaskCompletion | TaskCommand | ControlCommand) -> Identity:
    check_text(user=command.user, groups=command.groups, tenant_id=command.tenant_id)
    try:
        return Identity(
            user=command.user or "(unnamed)",
            groups=tuple(command.groups),
            admin=command.admin,
            tenant_id=command.tenant_id,
        )
    except ValidationError as exc:
        raise Refusal(ErrorKind.PERMISSION_DENIED, "invalid identity", field_errors(exc)) from None


class TaskCommands(EventOutbox):
    """Checks and applies commands (a base of :class:`sdk._runtime.WorkflowRuntime`)."""

    status: WorkflowStatus
    current_step: str | None
    tasks: dict[str, TaskInfo]
    forms: dict[str, type[BaseModel]]
    results: dict[str, BaseModel]
    rejections: list[Rejection]
    paused: bool
    cancel_reason: str | None
    canceled_by: str | None
    _unpublished: set[str]
    chains: dict[str, tuple[EscalationChain, ChainState]]
    signatures: SeenSignatures
    """The signatures of the commands accepted lately (replay protection, ``sdk._nonces``)."""
    keyring: Keyring | None = None
    """The worker's keyring, handed in by its interceptor (``sdk._trust``); None: no keys."""
    cancel_notes_pending = 0
    """``cancel_requested`` signals still being verified (the cancellation waits for them)."""

    # -- verification ---------------------------------------------------------------------

    def verify_now(self, action: str, payload: dict[str, Any]) -> None:
        """Verify a command's signature here (an update's validator; never run on replay)."""
        from ._signing import Keyring

        info = workflow.info()
        keyring = self.keyring if self.keyring is not None else Keyring()
        keyring.verify(
            action=action,
            workflow_id=info.workflow_id,
            run_id=info.run_id,
            payload=payload,
            now=workflow.now(),
        )
        self.signatures.check(payload)  # read only: a validator must not change the state

    def accept_once(self, payload: dict[str, Any], guarded: bool | None = None) -> None:
        """Remember a verified command's signature; refuse one accepted before (a replay).

        Runs in workflow code (signal and update handlers), on replay too, so what is
        remembered is the same on every replay. ``guarded`` says whether this instance refuses
        repeats (see :meth:`verify_recorded`); None asks now (an update handler, which runs in
        the workflow task that accepted the update, live and on replay alike).
        """
        found = signature_of(payload)
        if found is None:
            return
        if self.signatures.seen(*found):
            if guarded is None:
                length = workflow.info().get_current_history_length()
                guarded = workflow.patched(f"{REPLAY_GUARD_PATCH}/{length}")
            if guarded:
                raise replayed()
            return  # a repeat in a history written before replay protection: as it ran
        self.signatures.remember(payload, workflow.now())

    async def verify_recorded(self, action: str, payload: dict[str, Any]) -> None:
        """Verify a signal's signature in a local activity, so history records the verdict.

        Signals an instance received before its workers verified signals replay unverified, as
        they ran. Temporal answers a patch check once per run, so an instance that got such a
        signal asks again for each later one, under an id of its own (the history length is the
        same on replay): every signal received after the deploy is verified.
        """
        info = workflow.info()
        arrived_at = info.get_current_history_length()
        if not (
            workflow.patched(SIGNED_COMMANDS_PATCH)
            or workflow.patched(f"{SIGNED_COMMANDS_PATCH}/{arrived_at}")
        ):
            return
        # A repeat is decided before the verification's local activity: its result may be
        # delivered in another workflow task on replay than in the live run, and a patch check
        # belongs to one. Only a repeat asks (a marker), so other signals add nothing to history.
        found = signature_of(payload)
        if found is not None and self.signatures.seen(*found):
            if workflow.patched(f"{REPLAY_GUARD_PATCH}/{arrived_at}"):
                raise replayed()
            found = None  # a repeat in a history from before replay protection: as it ran
        request = {
            "action": action,
            "workflow_id": info.workflow_id,
            "run_id": info.run_id,
            "payload": payload,
            "now": workflow.now().isoformat(),
        }
        if found is not None:
            self.signatures.verifying(found[0], True)
        try:
            verdict = await workflow.execute_local_activity(
                VERIFY_ACTIVITY,
                request,
                result_type=dict,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
        except ActivityError as exc:
            raise Refusal(
                ErrorKind.UNAUTHENTICATED, f"the command could not be verified: {exc.cause or exc}"
            ) from None
        finally:
            if found is not None:
                self.signatures.verifying(found[0], False)
        if not verdict.get("ok"):
            kind = ErrorKind.UNAUTHENTICATED
            raise Refusal(kind, str(verdict.get("message") or "the command could not be verified"))
        if found is not None:
            self.signatures.remember(payload, workflow.now())

    # -- task commands --------------------------------------------------------------------

    def _visible_task(self, task_id: str) -> TaskInfo | None:
        # A task whose HumanTaskCreated is not committed yet is not there for commands.
        return None if task_id in self._unpublished else self.tasks.get(task_id)

    def check_completion(self, payload: dict[str, Any]) -> tuple[TaskInfo, TaskCompletion, BaseModel]:
        """Validate a completion; raise :class:`Refusal` saying why it cannot apply."""
        completion = _parse(TaskCompletion, payload, "completion")
        identity = _identity(completion)
        check_text(comment=completion.comment)
        task = check_task_command(
            completion.task_id,
            self._visible_task(completion.task_id),
            TaskAction.COMPLETE,
            identity,
            instance_tenant_id=self.tenant_id,
        )
        value = check_form(self.forms[task.task_id], completion.data)
        return task, completion, value

    def apply_completion(self, payload: dict[str, Any], *, strict: bool) -> TaskInfo | None:
        """Complete a task; a refused completion raises (update) or is recorded (signal)."""
        try:
            task, completion, value = self.check_completion(payload)
        except Refusal as refusal:
            self.refuse(payload, refusal, strict)
            return None
        self._complete(task, value, completion.user, completion.comment)
        return task

    def refuse(self, payload: Any, refusal: Refusal, strict: bool) -> None:
        """Raise the refusal (an update) or record it (a signal, which cannot answer)."""
        if strict:
            raise refusal.to_application_error() from None
        raw = payload if isinstance(payload, dict) else {}
        self.record_rejection(raw.get("task_id"), raw.get("user"), refusal)

    def check_command(self, action: TaskAction, payload: dict[str, Any]) -> tuple[TaskInfo, TaskCommand]:
        """Validate a claim, release, reassignment or comment; raise :class:`Refusal` if refused."""
        command = _parse(TaskCommand, payload, action.value)
        task = check_task_command(
            command.task_id,
            self._visible_task(command.task_id),
            action,
            _identity(command),
            instance_tenant_id=self.tenant_id,
            to_user=command.to_user,
            to_group=command.to_group,
            reason=command.reason,
            body=command.body,
            on_behalf_of=command.on_behalf_of,
        )
        if action is TaskAction.ESCALATE and self.next_link(task) is None:
            raise Refusal(
                ErrorKind.INVALID_INPUT,
                f"task {task.task_id} has no further escalation: its step declares no chain "
                "(on_due=[Escalate(...), ...]) or the chain's last link was applied",
            )
        return task, command

    def apply_command(self, action: TaskAction, payload: dict[str, Any], *, strict: bool) -> TaskInfo | None:
        """Apply a claim, release, reassignment or comment (see :meth:`apply_completion`)."""
        try:
            task, command = self.check_command(action, payload)
        except Refusal as refusal:
            self.refuse(payload, refusal, strict)
            return None
        now = workflow.now()
        task_uuid = _uuid(task.task_id)
        if action is TaskAction.CLAIM:
            if task.claimed_by != command.user:
                task.claimed_by, task.claimed_at = command.user, now
                self.emit(
                    ev.HumanTaskClaimed, step_name=task.step_name, task_id=task_uuid, claimed_by=command.user
                )
        elif action is TaskAction.RELEASE:
            previous, task.claimed_by, task.claimed_at = task.claimed_by, None, None
            self.emit(
                ev.HumanTaskReleased,
                step_name=task.step_name,
                task_id=task_uuid,
                released_by=command.user,
                previous_claimant=previous,
            )
        elif action is TaskAction.REASSIGN:
            self.reassign(
                task,
                command.to_user,
                command.to_group,
                command.user,
                command.reason or "",
                on_behalf_of=command.on_behalf_of,
            )
        elif action is TaskAction.ESCALATE:
            self.escalate(task, command.user, command.reason)
        elif action is TaskAction.COMMENT:
            comment_id = uuid5(task_uuid, f"comment/{len(task.comments) + 1}")
            body = (command.body or "").strip()
            task.comments.append(
                TaskComment(comment_id=str(comment_id), author=command.user, body=body, posted_at=now)
            )
            self.emit(
                ev.HumanTaskCommented,
                step_name=task.step_name,
                task_id=task_uuid,
                comment_id=comment_id,
                author=command.user,
                body=body,
            )
        return task

    def record_rejection(self, task_id: Any, user: Any, refusal: Refusal) -> None:
        """Keep a refused signal in the instance state (the newest :data:`MAX_REJECTIONS`)."""
        task_text, user_text = _shown(task_id), _shown(user)
        workflow.logger.warning(
            "rejected command for task %s by %s: %s", task_text, user_text, refusal.message
        )
        self.rejections.append(
            Rejection(
                task_id=task_text,
                user=user_text,
                reason=f"{refusal.kind.value}: {refusal.message}",
                kind=refusal.kind.value,
                errors=refusal.errors[:20],
                at=workflow.now(),
            )
        )
        del self.rejections[:-MAX_REJECTIONS]

    def _complete(
        self,
        task: TaskInfo,
        value: BaseModel,
        user: str,
        comment: str | None,
        status: TaskStatus = TaskStatus.COMPLETED,
    ) -> None:
        now = workflow.now()
        task.status = status
        task.completed_at = now
        task.completed_by = user
        task.form_data = value.model_dump(mode="json")
        task.comment = comment
        self.results[task.task_id] = value
        self.emit(
            ev.HumanTaskCompleted,
            step_name=task.step_name,
            task_id=_uuid(task.task_id),
            completed_by=user,
            form_data=task.form_data,
            comment=comment,
            step_execution_id=_uuid(task.step_execution_id),
            status=status.value,
        )
        self.emit(
            ev.StepCompleted,
            step_name=task.step_name,
            status=StepStatus.SUCCEEDED.value,
            output_data=task.form_data,
            duration_seconds=(now - task.created_at).total_seconds(),
            step_execution_id=_uuid(task.step_execution_id),
            completed_by=user,
        )

    def reassign(
        self,
        task: TaskInfo,
        to_user: str | None,
        to_group: str | None,
        by: str,
        reason: str,
        *,
        on_behalf_of: str | None = None,
        due_at: datetime | None = None,
        escalation_level: int = 0,
        replace: bool = False,
    ) -> None:
        """Move a task to another user and/or group (None keeps that side), with its event.

        An escalation link replaces both sides (``replace``: a None side is cleared) and may
        give the task a new due time (``due_at``; None keeps it). ``on_behalf_of`` names the
        absent user a delegation hands the task over for.
        """
        before = task.assignee_id or task.assignee_group
        task.on_behalf_of = on_behalf_of
        if to_user is not None or replace:
            task.assignee_id = to_user
        if to_group is not None or replace:
            task.assignee_group = to_group
        task.claimed_by = None
        task.claimed_at = None
        extra: dict[str, Any] = {}
        if due_at is not None:
            task.due_at = due_at
            extra["due_at"] = due_at
        if escalation_level:
            extra["escalation_level"] = escalation_level
        if replace:
            extra["replaces_assignment"] = True
        self.emit(
            ev.HumanTaskReassigned,
            step_name=task.step_name,
            task_id=_uuid(task.task_id),
            from_assignee=before,
            to_assignee=task.assignee_id or task.assignee_group,
            reassigned_by=by,
            reason=reason,
            to_assignee_id=to_user,
            to_assignee_group=to_group,
            on_behalf_of=on_behalf_of,
            **extra,
        )

    def next_link(self, task: TaskInfo) -> int | None:
        """The index of the chain link an escalation of ``task`` applies now (None: none left)."""
        found = self.chains.get(task.task_id)
        if found is None:
            return None
        chain, state = found
        return state.level if state.level < len(chain.links) and not state.ended else None

    def escalate(self, task: TaskInfo, by: str, reason: str | None) -> None:
        """Apply the next link of the task's chain (at its due time, or asked by ``by``).

        The link replaces the assignment and sets the next due time; the waiting step sees the
        change and waits for that time. The caller has checked that a link is left.
        """
        chain, state = self.chains[task.task_id]
        link = chain.links[state.level]
        state.level += 1
        state.changes += 1
        state.ended = link.due_in is None
        default = f"escalated (level {state.level}): task overdue" if by == "system" else None
        self.reassign(
            task,
            link.to,
            link.to_group,
            by,
            reason or link.reason or default or f"escalated (level {state.level}) by {by}",
            due_at=workflow.now() + link.due_in if link.due_in is not None else None,
            escalation_level=state.level,
            replace=True,
        )

    def check_control(self, payload: dict[str, Any]) -> ControlCommand:
        """Validate a pause, resume or cancellation note; raise :class:`Refusal` if refused."""
        command = _parse(ControlCommand, payload, "control")
        check_control(_identity(command), instance_tenant_id=self.tenant_id, reason=command.reason)
        return command

    def set_paused(self, paused: bool, by: str | None, reason: str | None) -> bool:
        """Pause or resume; returns False when the instance already was in that state."""
        if paused == self.paused or self.status not in (
            WorkflowStatus.RUNNING,
            WorkflowStatus.PAUSED,
        ):
            return False
        self.paused = paused
        if paused:
            self.status = WorkflowStatus.PAUSED
            self.emit(ev.WorkflowPaused, reason=reason, paused_at_step=self.current_step)
        else:
            self.status = WorkflowStatus.RUNNING
            self.emit(ev.WorkflowResumed, resumed_by=by, resuming_at_step=self.current_step)
        return True


def _uuid(value: str) -> UUID:
    return UUID(value)


def _shown(value: Any) -> str | None:
    """A sender-supplied value as a rejection shows it: text, cut short, NULs made visible."""
    if value is None:
        return None
    text = value if isinstance(value, str) else repr(value)
    return text[:200].replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode()
