"""The SDK's exception hierarchy.

Every error the SDK raises on purpose is a :class:`DurableWorkflowError`. Each also
inherits the matching built-in, so a generic ``except ValueError`` still catches bad input::

    DurableWorkflowError
    ├── DefinitionError (TypeError)          a decorator was applied to something it cannot use
    ├── InvalidInputError (ValueError)       a value no mirror database can store (NUL, NaN, ...)
    │   ├── PayloadTooLargeError             a command or start input over the size limit
    │   └── FormValidationError              submitted data does not satisfy the step's form
    ├── NotFoundError (LookupError)
    │   ├── WorkflowNotFoundError            unknown workflow name or version
    │   ├── InstanceNotFoundError            unknown instance (or another tenant's)
    │   └── TaskNotFoundError                unknown task (or another tenant's)
    ├── TaskNotPendingError (ValueError)     the task was already completed, expired or canceled
    ├── TaskClaimConflictError (ValueError)  another user claimed the task first
    ├── PermissionDeniedError (PermissionError)
    │   └── UnauthenticatedCommandError      the command's signature is missing, wrong or stale
    ├── TaskRejectedError (ValueError)       the workflow refused a completion the client sent
    └── MirrorUnavailableError (RuntimeError) an operation needs the SQL mirror and none is set

A workflow refuses a command with an ``ApplicationError`` whose ``type`` is an
:class:`ErrorKind` (details ``[{"kind", "message", "errors", ...}]``); the client turns the
kind back into the exception above (:meth:`Refusal.to_exception`), never parsing messages.

Errors that cross into Temporal (a step expiring, a workflow failing) are
``temporalio.exceptions.ApplicationError`` subclasses, so workflow code can catch them:
see :class:`HumanTaskExpired`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from temporalio.exceptions import ApplicationError

__all__ = [
    "DefinitionError",
    "DurableWorkflowError",
    "ErrorKind",
    "FormValidationError",
    "HumanTaskExpired",
    "InstanceNotFoundError",
    "InvalidInputError",
    "MirrorUnavailableError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "Refusal",
    "TaskClaimConflictError",
    "TaskNotFoundError",
    "TaskNotPendingError",
    "TaskRejectedError",
    "UnauthenticatedCommandError",
    "WorkflowNotFoundError",
    "field_errors",
]


class DurableWorkflowError(Exception):
    """Base class of every error the SDK raises on purpose."""


class DefinitionError(DurableWorkflowError, TypeError):
    """A decorator was applied to something it cannot compile; the message names the fix."""


class InvalidInputError(DurableWorkflowError, ValueError):
    """A value the mirror's databases cannot store faithfully; nothing was sent.

    Refused the same way on SQLite and PostgreSQL: NUL characters and unpaired surrogates in
    strings, NaN and infinity, integers outside 64 bits, floats beyond 2**53 in magnitude.

    Attributes:
        errors: One entry per offending value: ``{"field": "data.note", "message": "...",
            "type": "unstorable"}``.
    """

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        self.errors = errors or []
        super().__init__(message)


class PayloadTooLargeError(InvalidInputError):
    """A command or a start input is larger than ``sdk.MAX_PAYLOAD_BYTES``; nothing was sent."""


class FormValidationError(InvalidInputError):
    """Submitted form data failed validation; nothing was sent.

    Attributes:
        errors: One entry per failing field: ``{"field": "amount", "message": "...",
            "type": "float_parsing"}``.
    """

    def __init__(self, form_name: str, errors: list[dict[str, Any]]) -> None:
        self.form_name = form_name
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        super().__init__(f"invalid data for form {form_name}: {detail}", errors)

    @classmethod
    def from_pydantic(cls, form_name: str, exc: Any) -> FormValidationError:
        """Build from a ``pydantic.ValidationError``."""
        errors = field_errors(exc)
        return cls(form_name, errors)


def field_errors(exc: Any) -> list[dict[str, Any]]:
    """One ``{"field", "message", "type"}`` entry per failing field of a pydantic ``ValidationError``."""
    return [
        {
            "field": ".".join(str(p) for p in err["loc"]) or "__root__",
            "message": err["msg"],
            "type": err["type"],
        }
        for err in exc.errors(include_url=False)
    ]


class NotFoundError(DurableWorkflowError, LookupError):
    """Something the caller named does not exist (or belongs to another tenant)."""


class WorkflowNotFoundError(NotFoundError):
    """No workflow definition is registered under that name or version."""


class InstanceNotFoundError(NotFoundError):
    """No workflow instance with that id is visible to the caller."""


class TaskNotFoundError(NotFoundError):
    """No human task with that id is visible to the caller."""


class TaskNotPendingError(DurableWorkflowError, ValueError):
    """The task is no longer pending: completed, expired or canceled."""

    def __init__(self, task_id: object, status: str) -> None:
        self.task_id = task_id
        self.status = status
        super().__init__(f"task {task_id} is {status}, not pending")


class TaskClaimConflictError(DurableWorkflowError, ValueError):
    """Another user holds the claim on this task."""


class PermissionDeniedError(DurableWorkflowError, PermissionError):
    """The user may not perform this action on this task or instance."""


class UnauthenticatedCommandError(PermissionDeniedError):
    """The workflow could not verify who sent the command (unsigned, unknown key, bad
    signature, or issued too long ago); it changed nothing."""


class TaskRejectedError(DurableWorkflowError, ValueError):
    """The workflow refused the completion (its own checks disagreed with the client's)."""


class MirrorUnavailableError(DurableWorkflowError, RuntimeError):
    """The operation reads the SQL mirror, but the client was connected without a database."""


class ErrorKind(StrEnum):
    """Why a workflow refused a command: the ``type`` of the ``ApplicationError`` it raises.

    The values are the names of the matching client exceptions, so a refusal reads the same
    in Temporal's UI as in Python.
    """

    INVALID_COMMAND = "InvalidCommandError"
    INVALID_INPUT = "InvalidInputError"
    PAYLOAD_TOO_LARGE = "PayloadTooLargeError"
    FORM_VALIDATION = "FormValidationError"
    TASK_NOT_FOUND = "TaskNotFoundError"
    INSTANCE_NOT_FOUND = "InstanceNotFoundError"
    TASK_NOT_PENDING = "TaskNotPendingError"
    CLAIM_CONFLICT = "TaskClaimConflictError"
    PERMISSION_DENIED = "PermissionDeniedError"
    UNAUTHENTICATED = "UnauthenticatedCommandError"


class Refusal(Exception):
    """A command refused by the task policy, in the client or in workflow code.

    Not an SDK error itself: the client raises :meth:`to_exception`, workflow code raises
    :meth:`to_application_error` (an update) or records it (a signal).
    """

    def __init__(
        self, kind: ErrorKind, message: str, errors: list[dict[str, Any]] | None = None, **details: Any
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.errors = errors or []
        self.details = details

    def to_application_error(self) -> ApplicationError:
        """The failure an update answers with (never retried)."""
        details = {"kind": self.kind.value, "message": self.message, "errors": self.errors, **self.details}
        return ApplicationError(self.message, details, type=self.kind.value, non_retryable=True)

    @classmethod
    def from_application_error(cls, err: ApplicationError) -> Refusal | None:
        """The refusal an update failed with, or None when ``err`` is not one."""
        try:
            kind = ErrorKind(err.type or "")
        except ValueError:
            return None
        raw = err.details[0] if err.details else {}
        details = dict(raw) if isinstance(raw, dict) else {}
        message = str(details.pop("message", err.message))
        details.pop("kind", None)
        errors = details.pop("errors", None)
        return cls(kind, message, errors if isinstance(errors, list) else [], **details)

    def to_exception(self) -> DurableWorkflowError:
        """The SDK exception a caller sees for this refusal."""
        kind, message = self.kind, self.message
        if kind is ErrorKind.FORM_VALIDATION:
            return FormValidationError(str(self.details.get("form", "form")), self.errors)
        if kind is ErrorKind.TASK_NOT_PENDING:
            return TaskNotPendingError(self.details.get("task_id"), str(self.details.get("status")))
        if kind is ErrorKind.INVALID_INPUT:
            return InvalidInputError(message, self.errors)
        if kind is ErrorKind.PAYLOAD_TOO_LARGE:
            return PayloadTooLargeError(message, self.errors)
        simple: dict[ErrorKind, type[DurableWorkflowError]] = {
            ErrorKind.TASK_NOT_FOUND: TaskNotFoundError,
            ErrorKind.INSTANCE_NOT_FOUND: InstanceNotFoundError,
            ErrorKind.CLAIM_CONFLICT: TaskClaimConflictError,
            ErrorKind.PERMISSION_DENIED: PermissionDeniedError,
            ErrorKind.UNAUTHENTICATED: UnauthenticatedCommandError,
            ErrorKind.INVALID_COMMAND: TaskRejectedError,
        }
        return simple[kind](message)


class HumanTaskExpired(ApplicationError):
    """Raised inside a workflow when a human task passes its due time with ``on_due="expire"``.

    Workflow code may catch it; uncaught, it fails the workflow (it is not retried).
    """

    def __init__(self, step_name: str, task_id: str) -> None:
        super().__init__(
            f"human task {task_id} of step {step_name!r} expired before completion",
            step_name,
            task_id,
            type="HumanTaskExpired",
            non_retryable=True,
        )
        self.step_name = step_name
        self.task_id = task_id
