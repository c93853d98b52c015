"""Assemble a temporalio Worker that runs durable-workflows definitions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

from temporalio.client import Client
from temporalio.common import HeaderCodecBehavior
from temporalio.worker import Interceptor, Worker

from activities import (
    EventHandler,
    EventPublisher,
    EventSink,
    MirrorInterceptor,
    NotificationDispatcher,
    NotificationHook,
    Notifier,
    ReminderSender,
    log_reminder,
    machine_step_activity,
    substitutes_activity,
)
from sdk import Keyring, MachineStep, WorkflowDefinition, registry
from sdk.runtime import (
    SANDBOX_PASSTHROUGH,
    GraphWorkflow,
    NotificationDelivery,
    TrustInterceptor,
    keyring_from,
    sandbox_runner,
    verify_activity,
)

from ._failing import FailingWorkflowTasks, WatchingRunner

if TYPE_CHECKING:
    from sdk.mirror import MirrorWriter

__all__ = ["SANDBOX_PASSTHROUGH", "create_worker", "sandbox_runner", "worker_components"]


def worker_components(
    workflows: Iterable[WorkflowDefinition[..., Any]] | None = None,
    *,
    event_handlers: Sequence[EventHandler] = (),
    event_sink: EventSink | None = None,
    notification_hook: NotificationHook = log_reminder,
    publisher: EventPublisher | None = None,
    keyring: Keyring | None = None,
    notifications: NotificationDispatcher | None = None,
    mirror: MirrorWriter | None = None,
) -> tuple[list[type], list[Any]]:
    """The workflow classes and activities a worker registers for ``workflows``.

    ``workflows`` defaults to every registered definition, all versions. ``publisher``
    (default: one for ``event_handlers`` and ``event_sink``) publishes the event batches.
    ``keyring`` (default: from ``DWF_COMMAND_KEYS``) verifies signals; a worker built by hand
    also needs ``sdk.runtime.TrustInterceptor(keyring)`` for its updates to be verified.
    ``notifications`` (default: the publisher's) adds the notification delivery workflow and
    its activity.
    ``mirror`` holds the delegation table new tasks are handed over by (None: no delegations).
    """
    definitions = list(registry.workflows.values()) if workflows is None else list(workflows)
    steps: dict[str, MachineStep[..., Any]] = {}
    for step in registry.steps.values():
        if isinstance(step, MachineStep):
            steps[step.name] = step
    for definition in definitions:
        for step in definition.steps():
            if isinstance(step, MachineStep):
                steps.setdefault(step.name, step)
    # The graph interpreter runs any graph definition with the registered steps.
    classes = [*dict.fromkeys(d.workflow_class for d in definitions), GraphWorkflow]
    publisher = publisher or EventPublisher(event_handlers, event_sink, notifications=notifications)
    notifications = notifications or publisher.notifications
    reminders = ReminderSender(notification_hook, notifications=notifications)
    activities: list[Any] = [machine_step_activity(s) for s in steps.values()]
    activities += [publisher.publish, reminders.send_reminder, verify_activity(keyring or keyring_from(None))]
    if notifications is not None:
        classes.append(NotificationDelivery)
        activities.append(notifications.deliver_notification)
    activities.append(substitutes_activity(_delegations(mirror)))
    return classes, activities


def _delegations(mirror: MirrorWriter | None) -> Any:
    if mirror is None:
        return None
    from sdk.mirror import DelegationStore

    return DelegationStore(mirror.engine)


def _check_header_codec(client: Any) -> None:
    """Refuse a client whose payload codec would not cover the events steps carry in headers
    (the codec it uses: one a client plugin added counts)."""
    config = client.config(active_config=True) if hasattr(client, "config") else {}
    converter = config.get("data_converter")
    codec = getattr(converter, "payload_codec", None)
    if codec is not None and config.get("header_codec_behavior") == HeaderCodecBehavior.NO_CODEC:
        raise ValueError(
            "the client has a payload codec but does not encode headers, and step activities "
            "carry domain events (form data included) in a header: connect it with "
            "header_codec_behavior=temporalio.common.HeaderCodecBehavior.CODEC"
        )


def _contexts_matter(worker: Worker) -> bool:
    """Whether the data converter ``worker`` really uses (its client's, as client and worker
    plugins left it) binds a payload codec or external storage to each command's serialization
    context (see ``worker._failing.WatchingRunner``)."""
    client = worker.config(active_config=True)["client"]
    converter = client.config(active_config=True)["data_converter"]
    return converter.payload_codec is not None or getattr(converter, "external_storage", None) is not None


def create_worker(
    client: Client | Any,
    *,
    task_queue: str,
    workflows: Iterable[WorkflowDefinition[..., Any]] | None = None,
    event_handlers: Sequence[EventHandler] = (),
    event_sink: EventSink | None = None,
    mirror: MirrorWriter | None = None,
    notification_hook: NotificationHook = log_reminder,
    activities: Sequence[Any] = (),
    interceptors: Sequence[Interceptor] = (),
    command_keys: Keyring | str | None = None,
    allow_unsigned_commands: bool | None = None,
    notifiers: Sequence[Notifier] = (),
    notification_attempts: int = 10,
    failing_tasks: FailingWorkflowTasks | None = None,
    sandbox_passthrough: Sequence[str | ModuleType] = (),
    **worker_options: Any,
) -> Worker:
    """A temporalio ``Worker`` running ``workflows`` (default: all registered) and their steps.

    Args:
        client: A ``sdk.WorkflowClient`` or a temporalio ``Client`` connected with the
            pydantic data converter.
        task_queue: The task queue to poll.
        event_handlers: Callbacks that receive every domain event.
        event_sink: Where event batches are written first (default: ``mirror``).
        mirror: The SQL mirror: receives the event batches and, through its interceptor,
            every machine-step attempt. The interceptor is installed with or without a
            mirror: it also delivers the events step activities carry (``sdk._runtime``),
            so a worker must be built here for its events to arrive promptly.
        notification_hook: Called for each human task reminder (default: log it).
        activities: Extra activities to register alongside the steps.
        interceptors: Extra temporalio worker interceptors.
        command_keys: The public keys commands acting as a user must be signed with: a
            ``sdk.Keyring`` or ``"<key id>:<base64>,..."``; None reads ``DWF_COMMAND_KEYS``.
            With no keys every such command is refused (see ``docs/security.md``).
        allow_unsigned_commands: Accept unsigned commands, believing the identity they claim
            (development only); None reads ``DWF_ALLOW_UNSIGNED_COMMANDS``.
        notifiers: Receive task lifecycle notifications (``activities.LogNotifier``,
            ``WebhookNotifier``, ``EmailNotifier`` or your own ``activities.Notifier``), each
            delivered by a ``dwf.notify`` workflow on this task queue and retried by Temporal;
            see ``docs/escalation-and-notifications.md``.
        notification_attempts: Delivery attempts per notifier and notification.
        failing_tasks: Where the worker reports instances whose workflow task keeps failing
            (one warning per instance; the worker process exports them as a metric). None:
            a new one, reachable as ``worker.dwf_failing_tasks``.
        sandbox_passthrough: Modules (names or modules; a package covers its submodules)
            the workflow sandbox imports once per process instead of once per workflow run
            (e.g. the module of your pydantic models, or your workflow module itself): less
            CPU per run, but the sandbox no longer checks their code, or what they import,
            for non-deterministic calls; see ``docs/performance.md`` ("The sandbox"). A name
            that is no module raises ``ValueError``.
        **worker_options: Passed to ``temporalio.worker.Worker``.
    """
    temporal_client = getattr(client, "temporal", client)
    _check_header_codec(temporal_client)
    if mirror is not None:
        event_sink = event_sink or mirror
    notifications = None
    if notifiers:
        queries = None
        if mirror is not None:
            from sdk.mirror import MirrorQueries, session_factory

            queries = MirrorQueries(session_factory(mirror.engine))
        notifications = NotificationDispatcher(notifiers, queries=queries, max_attempts=notification_attempts)
    publisher = EventPublisher(event_handlers, event_sink, notifications=notifications)
    keyring = keyring_from(command_keys, allow_unsigned=allow_unsigned_commands)
    # First, so the events a step carries are written before any other interceptor runs.
    all_interceptors = [
        MirrorInterceptor(mirror, publisher=publisher),
        TrustInterceptor(keyring),
        *interceptors,
    ]
    classes, step_activities = worker_components(
        workflows, notification_hook=notification_hook, publisher=publisher, keyring=keyring, mirror=mirror
    )
    failing_tasks = failing_tasks if failing_tasks is not None else FailingWorkflowTasks()
    runner = WatchingRunner(sandbox_runner(sandbox_passthrough), failing_tasks)
    built = Worker(
        temporal_client,
        task_queue=task_queue,
        workflows=classes,
        activities=[*step_activities, *activities],
        interceptors=all_interceptors,
        workflow_runner=runner,
        **worker_options,
    )
    # Instances are created later, with the converter the worker ended up with.
    runner.contexts_matter = _contexts_matter(built)
    built.dwf_failing_tasks = failing_tasks  # type: ignore[attr-defined]
    return built
