"""What workers, activities and the mirror use of the workflow-side runtime (not for authors).

Authors import :mod:`sdk`; this module is the public surface between the runtime inside the
workflow sandbox and the code outside it that runs and mirrors workflows.
"""

from ._carry import carry_interceptor_class, take_carried
from ._graph_run import GraphWorkflow, graph_start_input, mirror_step_name
from ._ids import (
    instance_id_for,
    seq_from_activity_id,
    step_activity_id,
    step_execution_id_for,
    task_id_for,
    vote_id_for,
)
from ._notify import (
    DELIVER_NOTIFICATION_ACTIVITY,
    NOTIFY_WORKFLOW,
    NotificationDelivery,
    NotificationRequest,
)
from ._outbox import as_data, jsonable
from ._policy import denial_reason, separation_reason, vote_denial
from ._runtime import SYSTEM_USER
from ._sandbox import SANDBOX_PASSTHROUGH, sandbox_runner
from ._storable import REPLACEMENT, storable_copy
from ._trust import COMMAND_KEYS_ENV, TrustInterceptor, dev_signing_key, keyring_from, verify_activity
from ._types import EventBatch, TaskAction

__all__ = [
    # The interpreter workflow that runs graph definitions
    "GraphWorkflow",
    "graph_start_input",
    "mirror_step_name",
    # Event batches, as the outbox publishes them and step activities carry them
    "EventBatch",
    "as_data",
    "jsonable",
    # Carrying events in step activities' headers
    "carry_interceptor_class",
    "take_carried",
    # Deterministic ids
    "instance_id_for",
    "seq_from_activity_id",
    "step_activity_id",
    "step_execution_id_for",
    "task_id_for",
    "vote_id_for",
    # Signed commands: the keyring workers verify with
    "COMMAND_KEYS_ENV",
    "TrustInterceptor",
    "dev_signing_key",
    "keyring_from",
    "verify_activity",
    # Values every mirror database stores alike (what workflows produce is not checked before)
    "REPLACEMENT",
    "storable_copy",
    # Task notifications: the delivery workflow and its activity's name
    "DELIVER_NOTIFICATION_ACTIVITY",
    "NOTIFY_WORKFLOW",
    "NotificationDelivery",
    "NotificationRequest",
    "SYSTEM_USER",
    # The task rules the workflow enforces, for views that must agree with them (the inbox)
    "TaskAction",
    "denial_reason",
    "separation_reason",
    "vote_denial",
    # The workflow sandbox
    "SANDBOX_PASSTHROUGH",
    "sandbox_runner",
]
