"""durable-workflows: durable business workflows with human tasks, on Temporal.

Write workflows as decorated async functions; run them on a worker; drive them with the
client. See README.md for a walk-through.
"""

from . import events
from ._client import DEFAULT_TASK_QUEUE, WorkflowClient
from ._decorators import human_step, machine_step, workflow
from ._definition import HumanStep, MachineStep, WorkflowDefinition
from ._devserver import DevServer, find_temporal_cli
from ._errors import (
    DefinitionError,
    DurableWorkflowError,
    FormValidationError,
    HumanTaskExpired,
    InstanceNotFoundError,
    MirrorUnavailableError,
    NotFoundError,
    PermissionDeniedError,
    TaskClaimConflictError,
    TaskNotFoundError,
    TaskNotPendingError,
    TaskRejectedError,
    WorkflowNotFoundError,
)
from ._handle import InstanceDescription, InstanceHandle
from ._registry import registry
from ._types import (
    InstanceState,
    Rejection,
    StepStatus,
    StepType,
    TaskComment,
    TaskInfo,
    TaskStatus,
    WorkflowStatus,
)

__all__ = [
    # Client
    "DEFAULT_TASK_QUEUE",
    "DevServer",
    "InstanceDescription",
    "InstanceHandle",
    "WorkflowClient",
    "find_temporal_cli",
    # Errors
    "DefinitionError",
    "DurableWorkflowError",
    "FormValidationError",
    "HumanStep",
    "HumanTaskExpired",
    "InstanceNotFoundError",
    # Domain types
    "InstanceState",
    # Definitions
    "MachineStep",
    "MirrorUnavailableError",
    "NotFoundError",
    "PermissionDeniedError",
    "Rejection",
    "StepStatus",
    "StepType",
    "TaskClaimConflictError",
    "TaskComment",
    "TaskInfo",
    "TaskNotFoundError",
    "TaskNotPendingError",
    "TaskRejectedError",
    "TaskStatus",
    "WorkflowDefinition",
    "WorkflowNotFoundError",
    "WorkflowStatus",
    "events",
    # Decorators
    "human_step",
    "machine_step",
    "registry",
    "workflow",
]
