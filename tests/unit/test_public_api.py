"""The public surface: ``sdk.__all__`` is pinned, so a change to it is a deliberate one."""

from __future__ import annotations

import subprocess
import sys

import activities
import sdk
import sdk.inbox
import sdk.protocol
import sdk.runtime
import worker

SDK_ALL = {
    # Graph definitions, their errors and diagrams; timers, events and skips in code
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
    "timer_step",
    "wait_for_event",
    "skip_step",
    "EventTimeoutError",
    # Decorators and definitions
    "workflow",
    "machine_step",
    "human_step",
    "Escalate",
    "BulkItem",
    "BulkResult",
    "NotificationKind",
    "TaskNotification",
    "WEBHOOK_SIGNATURE_HEADER",
    "sign_webhook",
    "verify_webhook_signature",
    "MachineStep",
    "HumanStep",
    "WorkflowDefinition",
    "registry",
    # Client and dev server
    "WorkflowClient",
    "InstanceHandle",
    "InstanceDescription",
    "DEFAULT_TASK_QUEUE",
    "DevServer",
    "find_temporal_cli",
    "ReplayProblem",
    "check_running_instances",
    "FailingInstance",
    "failing_instances",
    "Delegations",
    # Identity and signed commands
    "ALL_TENANTS",
    "Identity",
    "IdentityProvider",
    "Keyring",
    "SigningKey",
    "generate_signing_key",
    "MAX_PAYLOAD_BYTES",
    # Domain types
    "InstanceState",
    "Rejection",
    "StepStatus",
    "StepType",
    "TaskComment",
    "TaskInfo",
    "TaskStatus",
    "WorkflowStatus",
    "events",
    "QuorumDecision",
    "TaskVote",
    # Errors
    "DurableWorkflowError",
    "DefinitionError",
    "FormValidationError",
    "NotFoundError",
    "WorkflowNotFoundError",
    "InstanceNotFoundError",
    "TaskNotFoundError",
    "TaskNotPendingError",
    "TaskClaimConflictError",
    "PermissionDeniedError",
    "TaskRejectedError",
    "MirrorUnavailableError",
    "HumanTaskExpired",
    "ErrorKind",
    "InvalidInputError",
    "PayloadTooLargeError",
    "UnauthenticatedCommandError",
}


def test_sdk_all_is_pinned() -> None:
    assert len(sdk.__all__) == len(set(sdk.__all__)), "duplicate names in sdk.__all__"
    assert set(sdk.__all__) == SDK_ALL


def test_every_exported_name_exists_and_star_import_gives_exactly_them() -> None:
    for name in sdk.__all__:
        assert hasattr(sdk, name), name
    namespace: dict[str, object] = {}
    exec("from sdk import *", namespace)
    assert set(namespace) - {"__builtins__"} == SDK_ALL


def test_error_hierarchy_inherits_the_matching_builtins() -> None:
    assert issubclass(sdk.FormValidationError, ValueError)
    assert issubclass(sdk.TaskNotFoundError, sdk.NotFoundError)
    assert issubclass(sdk.NotFoundError, LookupError)
    assert issubclass(sdk.PermissionDeniedError, PermissionError)
    assert issubclass(sdk.TaskNotPendingError, ValueError)
    for name in SDK_ALL:
        obj = getattr(sdk, name)
        if isinstance(obj, type) and issubclass(obj, Exception) and obj is not sdk.HumanTaskExpired:
            assert issubclass(obj, sdk.DurableWorkflowError), name


def test_worker_exports_its_builder() -> None:
    assert {"create_worker", "sandbox_runner"} <= set(worker.__all__)


def test_activities_export_only_activities_and_their_interceptor() -> None:
    assert set(activities.__all__) == {
        "EventHandler",
        "EventPublisher",
        "EventSink",
        "MirrorInterceptor",
        "EmailNotifier",
        "LogNotifier",
        "NotificationDispatcher",
        "Notifier",
        "NotifierBase",
        "WebhookNotifier",
        "NotificationHook",
        "ReminderSender",
        "log_reminder",
        "machine_step_activity",
        "substitutes_activity",
    }


def test_inbox_all_is_pinned() -> None:
    assert set(sdk.inbox.__all__) == {
        "create_inbox_app",
        "API_PREFIX",
        "OPENAPI_URL",
        "Authenticator",
        "AuthenticationError",
        "JWTAuthenticator",
        "SessionConfig",
        "SESSION_COOKIE",
        "CSRF_COOKIE",
        "CSRF_HEADER",
        "PROBLEM_JSON",
        "Problem",
        "FieldError",
    }
    for name in sdk.inbox.__all__:
        assert getattr(sdk.inbox, name) is not None, name


def test_runtime_and_protocol_names_exist() -> None:
    for module in (sdk.runtime, sdk.protocol):
        for name in module.__all__:
            assert getattr(module, name) is not None, (module.__name__, name)


def test_authoring_loads_no_client_database_or_dev_server() -> None:
    code = (
        "import sys, sdk\n"
        "from sdk import workflow, machine_step, human_step\n"
        "loaded = [m for m in ('temporalio.client', 'sqlalchemy', 'sdk._devserver', 'sdk._client',"
        " 'sdk.mirror', 'fastapi', 'sdk.inbox') if m in sys.modules]\n"
        "print(','.join(loaded))\n"
        "sdk.WorkflowClient\n"
        "print('temporalio.client' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:2] == ["", "True"], out
