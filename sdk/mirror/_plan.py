"""One batch of one instance's events as the statements that apply it, in order."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from sdk import WorkflowStatus
from sdk.runtime import storable_copy

from ._commit import database_unavailable
from ._metrics import MirrorMetrics
from ._statements import KEEP_PAUSED, Statements

__all__ = ["BatchPlan", "Key", "storable_params"]

Key = tuple[int, int, int]
"""An event's age: its workflow task's (history position, clock), then its sequence number."""


def _now() -> datetime:
    return datetime.now(UTC)


def storable_params(params: dict[str, Any], replaced: list[str]) -> dict[str, Any]:
    """``params`` with every value as both databases store it alike (``sdk.runtime.storable_copy``);
    the columns and fields that had to change are added to ``replaced``."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        fixed, changed = storable_copy(value, key.removeprefix("v_"))
        replaced += changed
        out[key] = fixed
    return out


class BatchPlan:
    """The statements that apply one batch of one instance's events, in order.

    Definition rows first, then the instance's changes folded into one statement (the
    insert when the batch starts the instance, else one update), applied when the row is
    older than all of them, which ends in the row that applying them one by one would; when
    the row holds some of them already, one by one, each if newer than the row. Then the
    step, task and audit rows in event order.

    An event's age is its key: the history position and clock of the workflow task that
    emitted it (set in :attr:`position` before its statements are planned), then its number
    in the instance's event stream. A workflow task Temporal never recorded and its retry
    emit the same sequence numbers, but the retry's position is greater (or, when the server
    lost the events before it too, its clock is later), so its events supersede the lost
    task's.
    """

    def __init__(self, sql: Statements, metrics: MirrorMetrics) -> None:
        self._sql = sql
        self._metrics = metrics
        self.head: list[tuple[Any, dict[str, Any]]] = []
        self.ops: list[tuple[Any, dict[str, Any]]] = []
        self.assigned: dict[uuid.UUID, str | None] = {}
        self.started_steps: set[uuid.UUID] = set()  # machine steps a StepStarted inserts
        self.on_commit: list[Callable[[], None]] = []
        self._instance_id: uuid.UUID | None = None
        self._start: dict[str, Any] | None = None
        self._changes: dict[str, Any] = {}
        self._steps: list[tuple[Key, dict[str, Any]]] = []  # each event's instance changes
        self._key: Key = (0, 0, 0)
        self.position: tuple[int, int] = (0, 0)  # (history position, clock) of the event planned
        self.replaced: list[str] = []  # values no database stores alike, replaced (see storable_params)
        self.dropped: list[str] = []  # statements a salvage could not write (see execute)

    def first(self, stmt: Any, params: dict[str, Any]) -> None:
        self.head.append((stmt, storable_params(params, self.replaced)))

    def add(self, stmt: Any, params: dict[str, Any]) -> None:
        self.ops.append((stmt, storable_params(params, self.replaced)))

    def _for(self, instance_id: uuid.UUID, seq: int) -> None:
        if self._instance_id is not None and self._instance_id != instance_id:
            raise ValueError(
                f"a batch holds the events of one instance, got {self._instance_id} and {instance_id}"
            )
        self._instance_id = instance_id
        self._key = max(self._key, (*self.position, seq))

    def start_instance(self, instance_id: uuid.UUID, seq: int, values: dict[str, Any]) -> None:
        self._for(instance_id, seq)
        self._start = storable_params(values, self.replaced)
        self._steps.append(((*self.position, seq), {}))

    def instance(self, instance_id: uuid.UUID, seq: int, **changes: Any) -> None:
        self._for(instance_id, seq)
        changes = storable_params(changes, self.replaced)
        self._changes.update(changes)
        self._steps.append(((*self.position, seq), changes))

    def sets_current_step(self, step_name: str) -> bool:
        """Whether the batch leaves the instance's ``current_step`` at ``step_name``."""
        return self._changes.get("current_step", None) == step_name

    def _update(self, key: Key, newest: Key, changes: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """The guarded update applying ``changes``: if the row is older than ``key``."""
        params: dict[str, Any] = {f"v_{col}": value for col, value in changes.items()}
        params.update(
            v_history_position=newest[0],
            v_history_clock=newest[1],
            v_last_event_seq=newest[2],
            v_updated_at=_now(),
            b_id=self._instance_id,
            b_pos=key[0],
            b_clock=key[1],
            b_seq=key[2],
        )
        if "status" in changes:
            keep = changes["status"] == KEEP_PAUSED
            params["b_keep_paused"] = 1 if keep else 0
            if keep:
                params["v_status"] = WorkflowStatus.RUNNING
        columns = (*changes, "history_position", "history_clock", "last_event_seq", "updated_at")
        return self._sql.instance_update(columns), params

    def _instance_statement(self) -> tuple[Any, dict[str, Any]] | None:
        """All the batch's instance changes in one statement, applied if the row is older
        than every one of them (the common case: a batch comes after the ones before it)."""
        if not self._steps:
            return None
        oldest = min(key for key, _ in self._steps)
        if self._start is not None:
            values = dict(self._start)
            values.update(self._changes)
            if values.get("status") == KEEP_PAUSED:
                values["status"] = WorkflowStatus.RUNNING
            pos, clock, seq = self._key
            values.update(history_position=pos, history_clock=clock, last_event_seq=seq, updated_at=_now())
            stmt = self._sql.instance_upsert(tuple(values))
            return stmt, {**values, "b_pos": oldest[0], "b_clock": oldest[1], "b_seq": oldest[2]}
        return self._update(oldest, self._key, self._changes)

    async def execute(self, conn: AsyncConnection) -> None:
        """Run the statements in the caller's transaction (any failure fails them all)."""
        await self._execute(conn, salvage=False)

    async def salvage(self, conn: AsyncConnection) -> None:
        """Run each statement in a savepoint of its own, skipping those the database refuses.

        For a batch that failed as a whole for a reason other than an unavailable database (a
        constraint, a value the column cannot hold): the rest of the batch is written and what
        was skipped is listed in :attr:`dropped`. An unavailable database still raises.
        """
        self.dropped.clear()
        await self._execute(conn, salvage=True)

    async def _execute(self, conn: AsyncConnection, *, salvage: bool) -> None:
        run = self._salvaged if salvage else _run
        instance = self._instance_statement()
        for stmt, params in self.head:
            await run(conn, stmt, params)
        if instance is not None:
            result = await run(conn, *instance)
            self._metrics.rows_written += max(_rowcount(result), 0)
            if result is not None and not result.rowcount and len(self._steps) > 1:
                # The row already holds some of these events (batches that overlap, from
                # steps run in parallel): apply the changes one by one, each if newer.
                for key, changes in self._steps:
                    if changes:
                        await run(conn, *self._update(key, key, changes))
        for stmt, params in self.ops:
            result = await run(conn, stmt, params)
            self._metrics.rows_written += max(_rowcount(result), 0)

    async def _salvaged(self, conn: AsyncConnection, stmt: Any, params: dict[str, Any]) -> Any:
        try:
            async with conn.begin_nested():
                return await conn.execute(stmt, params)
        except Exception as exc:
            if database_unavailable(exc):
                raise
            table = getattr(getattr(stmt, "table", None), "name", "?")
            row = params.get("id", params.get("b_id", "?"))
            self.dropped.append(f"{table} {row}: {_one_line(exc)}")
            return None

    def committed(self) -> None:
        for callback in self.on_commit:
            callback()


async def _run(conn: AsyncConnection, stmt: Any, params: dict[str, Any]) -> Any:
    return await conn.execute(stmt, params)


def _rowcount(result: Any) -> int:
    return int(result.rowcount or 0) if result is not None else 0


def _one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:200]
