"""The ``dwf.publish_events`` local activity: events from workflow code to their sinks.

Workflow code cannot do I/O, so it hands each batch of domain events to this activity. The
batch first goes to the event sink, then to every handler the application registered.

The SQL mirror as sink is waited for a few seconds at most (``MirrorWriter.commit_wait``):
when its database is unavailable the batch stays queued in the writer, in order, and the
activity returns, so an outage delays rows but never holds a workflow up for longer, nor
fails it. A write the database refuses (not an outage) fails the attempt and Temporal
retries it; so does any failure of another sink. A handler's exception is logged and does not
stop the others: handlers are for side effects such as notifications and must tolerate seeing
an event twice (a retried batch).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from temporalio import activity

from sdk.events import (
    HumanTaskCompleted,
    WorkflowCanceled,
    WorkflowCompleted,
    WorkflowEvent,
    WorkflowFailed,
    event_from_dict,
)
from sdk.mirror import MirrorWriter
from sdk.protocol import PUBLISH_ACTIVITY
from sdk.runtime import EventBatch

from ._notifications import NotificationDispatcher
from ._verify import CompletionCheck

__all__ = ["EventHandler", "EventPublisher", "EventSink"]

logger = logging.getLogger("dwf.events")

_ENDS = (WorkflowCompleted, WorkflowFailed, WorkflowCanceled)

EventHandler = Callable[[WorkflowEvent], Awaitable[None] | None]
"""An application callback that receives every domain event."""


class EventSink(Protocol):
    """Where batches go before the handlers (the mirror writer implements it)."""

    async def write_batch(self, batch: EventBatch, events: Sequence[WorkflowEvent]) -> object: ...


class EventPublisher:
    """Holds the sink and handlers; :meth:`publish` is the registered local activity."""

    def __init__(
        self,
        handlers: Sequence[EventHandler] = (),
        sink: EventSink | None = None,
        *,
        notifications: NotificationDispatcher | None = None,
    ) -> None:
        self.handlers = list(handlers)
        self.sink = sink
        self.notifications = notifications
        self.completion_check: CompletionCheck | None = None

    def _check_completions(
        self, writer: MirrorWriter, batch: EventBatch, events: Sequence[WorkflowEvent]
    ) -> None:
        """Have the rows of tasks this batch completed, and the instance's end, checked
        against Temporal later (see ``_verify``): the workflow task that wrote them may never
        be recorded."""
        completed = [e.task_id for e in events if isinstance(e, HumanTaskCompleted)]
        ended = next((e.instance_id for e in events if isinstance(e, _ENDS)), None)
        if not completed and ended is None:
            return
        if self.completion_check is None:
            self.completion_check = CompletionCheck(writer)
            writer.on_close(self.completion_check.close)
        self.completion_check.schedule(activity.client(), batch.workflow_id, batch.run_id, completed, ended)

    @activity.defn(name=PUBLISH_ACTIVITY)
    async def publish(self, batch: EventBatch) -> None:
        events = [event_from_dict(item) for item in batch.events]
        sink = self.sink
        if isinstance(sink, MirrorWriter):
            await sink.write_batch(batch, events, wait=sink.commit_wait)
            self._check_completions(sink, batch, events)
        elif sink is not None:
            await sink.write_batch(batch, events)
        await self.deliver(batch, events)

    async def deliver(self, batch: EventBatch, events: Sequence[WorkflowEvent]) -> None:
        """Hand ``events`` to every handler (after the sink has them), and start the deliveries
        of the task notifications they make."""
        if self.notifications is not None:
            await self.notifications.dispatch(batch, events)
        for event in events:
            for handler in self.handlers:
                try:
                    result = handler(event)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    logger.exception(
                        "event handler %r failed on %s of workflow %s",
                        handler,
                        type(event).__name__,
                        batch.workflow_id,
                    )
