"""durable-workflows: durable business workflows with human tasks, on Temporal.

Write workflows as decorated async functions; run them on a worker; drive them with the
client. See README.md for a walk-through.

Importing the authoring API (decorators, definitions, types, errors) loads neither the
Temporal client, SQLAlchemy nor the dev server: the client's names load on first use.
"""

from typing import TYPE_CHECKING, Any

from . import events
from ._decorators import human_step, machine_step, workflow
from ._definition import HumanStep, MachineStep, WorkflowDefinition
from ._errors import (
    DefinitionError,
    DurableWorkflowError,
    ErrorKind,
    FormValidationError,
    HumanTaskExpired,
    InstanceNotFoundError,
    InvalidInputError,
    MirrorUnavailableError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    TaskClaimConflictError,
    TaskNotFoundError,
    TaskNotPendingError,
    TaskRejectedError,
    UnauthenticatedCommandError,
    WorkflowNotFoundError,
)
from ._escalation import Escalate
from ._graph_errors import (
    ConditionSyntaxError,
    ConditionTypeError,
    EdgeTargetError,
    EventTimeoutError,
    ForkWithoutJoinError,
    GraphCycleError,
    GraphDefinitionError,
    NoPathToTerminalError,
    UnknownFieldError,
    UnknownImplementationError,
    UnreachableStepError,
)
from ._graph_model import GraphDefinition, graph_json_schema
from ._identity import ALL_TENANTS, Identity, IdentityProvider
from ._notify import NotificationKind, TaskNotification
from ._registry import registry
from ._signing import Keyring, SigningKey, generate_signing_key
from ._storable import MAX_PAYLOAD_BYTES
from ._types import (
    InstanceState,
    QuorumDecision,
    Rejection,
    StepStatus,
    StepType,
    TaskComment,
    TaskInfo,
    TaskStatus,
    TaskVote,
    WorkflowStatus,
)
from ._waits import skip_step, timer_step, wait_for_event
from ._webhooks import WEBHOOK_SIGNATURE_HEADER, sign_webhook, verify_webhook_signature

__all__ = [
    # Client
    "DEFAULT_TASK_QUEUE",
    "DevServer",
    "InstanceDescription",
    "InstanceHandle",
    "WorkflowClient",
    "find_temporal_cli",
    "ReplayProblem",
    "check_running_instances",
    "FailingInstance",  # an instance whose workflow task keeps failing
    "failing_instances",
    # Out of office: substitutes of absent users (client.delegations)
    "Delegations",
    # Identity and signed commands
    "ALL_TENANTS",
    "Identity",
    "IdentityProvider",
    "Keyring",
    "SigningKey",
    "generate_signing_key",
    "MAX_PAYLOAD_BYTES",
    # Errors
    "ErrorKind",
    "InvalidInputError",
    "PayloadTooLargeError",
    "UnauthenticatedCommandError",
    "DefinitionError",
    "DurableWorkflowError",
    "FormValidationError",
    "HumanStep",
    "HumanTaskExpired",
    "InstanceNotFoundError",
    # Domain types
    "InstanceState",
    # Approval policies: what a quorum step returns, and each vote
    "QuorumDecision",
    "TaskVote",
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
    # Bulk actions on the tasks or instances a query matches
    "BulkItem",
    "BulkResult",
    # Escalation chains (on_due=[Escalate(...), ..., "expire"])
    "Escalate",
    # Task notifications, and the signature of webhook notifications
    "NotificationKind",
    "TaskNotification",
    "WEBHOOK_SIGNATURE_HEADER",
    "sign_webhook",
    "verify_webhook_signature",
    # Graph definitions (steps and edges as data), their errors and diagrams
    "GraphDefinition",
    "graph_json_schema",
    "check_graph",
    "mermaid",
    "GraphDefinitionError",
    "UnknownImplementationError",
    "EdgeTargetError",
    "UnreachableStepError",
    "NoPathToTerminalError",
    "ForkWithoutJoinError",
    "GraphCycleError",
    "ConditionSyntaxError",
    "UnknownFieldError",
    "ConditionTypeError",
    # Timers, external events and skipped steps in @workflow functions
    "timer_step",
    "wait_for_event",
    "skip_step",
    "EventTimeoutError",
    # Decorators
    "human_step",
    "machine_step",
    "registry",
    "workflow",
]

if TYPE_CHECKING:
    from ._bulk import BulkItem, BulkResult
    from ._client import DEFAULT_TASK_QUEUE, WorkflowClient
    from ._delegation import Delegations
    from ._devserver import DevServer, find_temporal_cli
    from ._diagram import mermaid
    from ._failing import FailingInstance, failing_instances
    from ._graph_check import check_graph
    from ._handle import InstanceDescription, InstanceHandle
    from ._predeploy import ReplayProblem, check_running_instances

_LAZY = {
    "BulkItem": "._bulk",
    "BulkResult": "._bulk",
    "DEFAULT_TASK_QUEUE": "._client",
    "WorkflowClient": "._client",
    "Delegations": "._delegation",
    "DevServer": "._devserver",
    "find_temporal_cli": "._devserver",
    "InstanceDescription": "._handle",
    "InstanceHandle": "._handle",
    "ReplayProblem": "._predeploy",
    "check_running_instances": "._predeploy",
    "FailingInstance": "._failing",
    "failing_instances": "._failing",
    # CEL's parser loads on first use
    "check_graph": "._graph_check",
    "mermaid": "._diagram",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sdk' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
