"""The ``dwf.publish_events`` local activity: events from workflow code to their sinks.

Workflow code cannot do I/O, so it hands each batch of domain events to this activity. The
batch first goes to the event sink (the SQL mirror, when one is configured; a failure there
fails the attempt and Temporal retries it), then to every handler the application
registered. A handler's exception is logged and does not stop the others: handlers are for
side effects such as notifications and must tolerate seeing an event twice (a retried batch).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from temporalio import activity

from sdk.events import WorkflowEvent, event_from_dict
from sdk.protocol import PUBLISH_ACTIVITY
from sdk.runtime import EventBatch

__all__ = ["EventHandler", "EventPublisher", "EventSink"]

logger = logging.getLogger("dwf.events")

EventHandler = Callable[[WorkflowEvent], Awaitable[None] | None]
"""An application callback that receives every domain event."""


class EventSink(Protocol):
    """Where batches go before the handlers (the mirror writer implements it)."""

    async def write_batch(self, batch: EventBatch, events: Sequence[WorkflowEvent]) -> None: ...


class EventPublisher:
    """Holds the sink and handlers; :meth:`publish` is the registered local activity."""

    def __init__(self, handlers: Sequence[EventHandler] = (), sink: EventSink | None = None) -> None:
        self.handlers = list(handlers)
        self.sink = sink

    @activity.defn(name=PUBLISH_ACTIVITY)
    async def publish(self, batch: EventBatch) -> None:
        events = [event_from_dict(item) for item in batch.events]
        if self.sink is not None:
            await self.sink.write_batch(batch, events)
        await self.deliver(batch, events)

    async def deliver(self, batch: EventBatch, events: Sequence[WorkflowEvent]) -> None:
        """Hand ``events`` to every handler (after the sink has them)."""
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
