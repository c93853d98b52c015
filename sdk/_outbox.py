"""The event outbox: how workflow code gets its domain events to the mirror, exactly once.

Runs inside the Temporal sandbox, so it is deterministic and does no I/O. It keeps the
instance's state (current step, human tasks, pause flag), turns each transition into a
domain event with deterministic ids, and hands buffered events to the ``dwf.publish_events``
local activity before the workflow blocks, so the mirror and the application's handlers
see them promptly and exactly once per transition.

Events that need not hold the workflow up ride along instead: when a machine step is
scheduled, the events buffered so far go with its activity, in a header (``dwf-events``) that
the worker's activity-side interceptor writes before the step's code runs; an urgent event
with no step activity scheduled in the same activation is published at the end of that
activation. Which events ride along is decided by workflow code alone, never by whether the
interceptor is there, so a worker or ``Replayer`` without it issues the same commands; the
events an activity carried are published again at the next flush until that activity
completes (writes are idempotent). Instances started before this (no ``dwf-carry-events``
patch marker in their history) keep publishing every urgent event by local activity.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic_core import to_jsonable_python
from temporalio import workflow
from temporalio.common import RetryPolicy

from . import events as ev
from ._types import (
    EventBatch,
)
from .protocol import PUBLISH_ACTIVITY

if TYPE_CHECKING:
    from ._definition import WorkflowDefinition

__all__ = ["EventOutbox", "as_data", "jsonable"]

_PUBLISH_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10)
)


def jsonable(value: Any) -> Any:
    """A JSON-able copy of a step's argument or result (models become dicts)."""
    return to_jsonable_python(value, fallback=repr)


def as_data(args: list[Any]) -> dict[str, Any] | None:
    """Step or workflow input as the dict the seed's ``input_data`` columns hold."""
    if not args:
        return None
    if len(args) == 1:
        single = jsonable(args[0])
        return single if isinstance(single, dict) else {"value": single}
    return {"args": jsonable(args)}


class EventOutbox:
    """Buffers a run's events and publishes them (a base of :class:`sdk._runtime.WorkflowRuntime`)."""

    instance_id: UUID
    definition: WorkflowDefinition[..., Any] | None
    tenant_id: str | None
    created_by: str | None

    def __init__(self) -> None:
        self._event_seq = 0
        self._events: list[dict[str, Any]] = []
        self._urgent = False
        # Events handed to a step activity's header, by activity id, until it completes.
        self._carried: dict[str, list[dict[str, Any]]] = {}
        self._outbox: tuple[str, EventBatch] | None = None
        self._in_header: set[str] = set()  # activities whose header got their events
        self._unconfirmed: set[str] = set()  # activities that carried events, not completed yet
        self._carrying = False
        self._instance_published = False  # WorkflowStarted is committed (an LA or a step wrote it)
        self._flusher: asyncio.Task[None] | None = None

    def emit(
        self,
        event_type: type[ev.WorkflowEvent],
        *,
        urgent: bool = True,
        timestamp: datetime | None = None,
        **fields: Any,
    ) -> None:
        """Buffer an event stamped with this instance and the workflow clock.

        ``urgent=False`` marks events another writer already makes visible (a machine step's
        start and end, which the activity-side interceptor records as they happen); they
        ride along with the next flush instead of forcing one.
        """
        event = event_type(instance_id=self.instance_id, timestamp=timestamp or workflow.now(), **fields)
        self._event_seq += 1
        payload = ev.event_to_dict(event)
        payload["seq"] = self._event_seq
        # The workflow task's position in the history and its clock: a retry of a task
        # Temporal never recorded repeats its sequence numbers at a greater position, or
        # later (the mirror orders row versions by them).
        payload["pos"] = workflow.info().get_current_history_length()
        payload["clock"] = int(workflow.now().timestamp() * 1_000_000)
        if not urgent:
            payload["urgent"] = False
        self._events.append(payload)
        self._urgent = self._urgent or urgent

    def _batch(self, events: list[dict[str, Any]]) -> EventBatch:
        assert self.definition is not None
        info = workflow.info()
        return EventBatch(
            workflow_id=info.workflow_id,
            run_id=info.run_id,
            namespace=info.namespace,
            task_queue=info.task_queue,
            # name@version: the Temporal type of a compiled workflow, the definition's key
            # in the mirror for a graph the interpreter runs.
            workflow_type=self.definition.workflow_type,
            workflow_name=self.definition.name,
            workflow_version=self.definition.version,
            tenant_id=self.tenant_id,
            created_by=self.created_by,
            events=events,
        )

    async def flush(self, *, force: bool = False) -> None:
        """Publish buffered events through the local activity.

        A no-op when nothing is buffered (nor carried by a step activity that has not
        completed), or when only non-urgent events are and ``force`` is false. Events that
        step activities carried are published again with them: writes are idempotent, and
        an activity that never ran, or ran where no interceptor read its header, wrote none.
        Whether this issues a command depends on the history only (never on the interceptor).
        """
        if self.definition is None or not (force or self._urgent):
            return
        if not self._events and not self._unconfirmed:
            return
        events, self._events, self._urgent = self._events, [], False
        if self._carried:
            carried = [event for batch in self._carried.values() for event in batch]
            events = sorted([*carried, *events], key=lambda event: int(event["seq"]))
        self._carried.clear()
        self._unconfirmed.clear()
        await workflow.execute_local_activity(
            PUBLISH_ACTIVITY,
            self._batch(events),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=_PUBLISH_RETRY,
        )
        self._instance_published = True  # the first flush holds WorkflowStarted

    async def flush_soon(self) -> None:
        """Publish urgent events before this activation ends, unless a step activity carries them.

        On instances started before events could ride along, this is :meth:`flush`.
        """
        if not self._carrying:
            await self.flush()
            return
        if self._urgent and (self._flusher is None or self._flusher.done()):
            self._flusher = asyncio.get_running_loop().create_task(self._flush_when_idle())

    async def _flush_when_idle(self) -> None:
        # temporalio checks wait conditions only once nothing is ready to run, in order, and
        # a condition that holds queues its waiter. So "nothing queued" when this condition is
        # checked means no waiter was released before it in this pass: what this activation
        # resumed has run up to its next wait, and a step it scheduled carries the events.
        # Twice: a waiter released in the same pass as this one (a condition that already
        # held, say) runs before the second check. Again while urgent events arrived during
        # the publish (flush_soon starts no second flusher meanwhile).
        ready = getattr(asyncio.get_running_loop(), "_ready", None)
        while self._urgent:
            await workflow.wait_condition(lambda: not ready)
            await workflow.wait_condition(lambda: not ready)
            await self.flush()

    def carry(self, activity_id: str) -> bool:
        """Hand the buffered events to the step activity ``activity_id`` about to be scheduled.

        The worker's interceptor puts them in the activity's header (:meth:`take_outbox`).
        False when nothing is handed over: nothing is buffered, or the events cannot go
        before the instance row is committed (WorkflowStarted is neither committed nor
        among them: a step started alongside the first publish).
        """
        if not self._events or self.definition is None:
            return False
        if not self._instance_published and int(self._events[0]["seq"]) != 1:
            return False
        events, self._events, self._urgent = self._events, [], False
        self._carried[activity_id] = events
        self._unconfirmed.add(activity_id)
        self._outbox = (activity_id, self._batch(events))
        return True

    def take_outbox(self, activity_id: str) -> EventBatch | None:
        """The events for the header of activity ``activity_id`` (called by the interceptor)."""
        if self._outbox is None or self._outbox[0] != activity_id:
            return None
        batch, self._outbox = self._outbox[1], None
        self._in_header.add(activity_id)
        return batch

    def confirm(self, activity_id: str) -> None:
        """Activity ``activity_id`` completed: its interceptor wrote the events it carried.

        Unless no interceptor put them in its header (a worker not built by
        ``worker.create_worker``): then they stay for the next flush. Only what that flush
        sends depends on it, never whether it happens.
        """
        if activity_id not in self._unconfirmed:
            return
        self._unconfirmed.discard(activity_id)
        self._instance_published = True  # the instance row existed, or this batch made it
        if activity_id in self._in_header:
            self._in_header.discard(activity_id)
            self._carried.pop(activity_id, None)

    def step_abandoned(self, activity_id: str) -> None:
        """A step's activity ended without completing (failed, canceled): what it carried is
        published at the end of the activation unless the next step carries it."""
        if activity_id in self._unconfirmed:
            self._urgent = True

    @property
    def carrying(self) -> bool:
        """Whether step activities carry events (instances started with this runtime)."""
        return self._carrying
