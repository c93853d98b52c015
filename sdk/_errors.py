"""The SDK's exception hierarchy.

Every error the SDK raises on purpose is a :class:`DurableWorkflowError`. Each also
inherits the matching built-in, so a generic ``except ValueError`` still catches bad input::

    DurableWorkflowError
    ├── DefinitionError (TypeError)          a decorator was applied to something it cannot use
    ├── FormValidationError (ValueError)     submitted data does not satisfy the step's form
    ├── NotFoundError (LookupError)
    │   ├── WorkflowNotFoundError            unknown workflow name or version
    │   ├── InstanceNotFoundError            unknown instance (or another tenant's)
    │   └── TaskNotFoundError                unknown task (or another tenant's)
    ├── TaskNotPendingError (ValueError)     the task was already completed, expired or canceled
    ├── TaskClaimConflictError (ValueError)  another user claimed the task first
    ├── PermissionDeniedError (PermissionError)
    ├── TaskRejectedError (ValueError)       the workflow refused a completion the client sent
    └── MirrorUnavailableError (RuntimeError) an operation needs the SQL mirror and none is set

Errors that cross into Temporal (a step expiring, a workflow failing) are
``temporalio.exceptions.ApplicationError`` subclasses, so workflow code can catch them:
see :class:`HumanTaskExpired`.
"""

from __future__ import annotations

from typing import Any

from temporalio.exceptions import ApplicationError

__all__ = [
    "DefinitionError",
    "DurableWorkflowError",
    "FormValidationError",
    "HumanTaskExpired",
    "InstanceNotFoundError",
    "MirrorUnavailableError",
    "NotFoundError",
    "PermissionDeniedError",
    "TaskClaimConflictError",
    "TaskNotFoundError",
    "TaskNotPendingError",
    "TaskRejectedError",
    "WorkflowNotFoundError",
    "field_errors",
]


class DurableWorkflowError(Exception):
    """Base class of every error the SDK raises on purpose."""


class DefinitionError(DurableWorkflowError, TypeError):
    """A decorator was applied to something it cannot compile; the message names the fix."""


class FormValidationError(DurableWorkflowError, ValueError):
    """Submitted form data failed validation; nothing was sent.

    Attributes:
        errors: One entry per failing field: ``{"field": "amount", "message": "...",
            "type": "float_parsing"}``.
    """

    def __init__(self, form_name: str, errors: list[dict[str, Any]]) -> None:
        self.form_name = form_name
        self.errors = errors
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        super().__init__(f"invalid data for form {form_name}: {detail}")

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


class TaskRejectedError(DurableWorkflowError, ValueError):
    """The workflow refused the completion (its own checks disagreed with the client's)."""


class MirrorUnavailableError(DurableWorkflowError, RuntimeError):
    """The operation reads the SQL mirror, but the client was connected without a database."""


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
