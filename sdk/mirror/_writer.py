"""The mirror writer: domain events and activity attempts become rows in the four tables.

Two writers feed it, both outside the sandbox:

- the ``dwf.publish_events`` local activity hands it every batch of workflow-side events
  (:meth:`MirrorWriter.write_batch`), in one transaction per batch;
- the activity-side interceptor records each machine-step attempt as it starts and ends
  (:meth:`MirrorWriter.step_attempt_started` / ``step_attempt_finished``), so a step's row
  is visible while it runs.

Every write is idempotent: rows are keyed by the deterministic ids of ``sdk._ids``, inserts
are ``ON CONFLICT`` upserts, and instance-level changes apply only when their event's
sequence number is newer than the row's ``last_event_seq``. Replays, retried batches and
crashed workers therefore converge on the same rows (see ``_projection``).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sdk import StepStatus, StepType, WorkflowDefinition, registry
from sdk import events as ev
from sdk.runtime import EventBatch

from ._commit import GroupCommit, Work
from ._database import create_engine
from ._metrics import MirrorMetrics
from ._models import StepExecutionModel, WorkflowDefinitionModel
from ._plan import BatchPlan, storable_params
from ._projection import Projection, definition_id_for
from ._statements import Statements

__all__ = ["MirrorWriter"]

logger = logging.getLogger("dwf.mirror")

_steps = cast(Table, StepExecutionModel.__table__)
_definitions = cast(Table, WorkflowDefinitionModel.__table__)


def _now() -> datetime:
    return datetime.now(UTC)


class MirrorWriter:
    """Writes the mirror tables; implements ``activities.EventSink``.

    Create it with :meth:`from_url`; one writer per worker process. It owns an async engine
    (a small pool) and opens one connection per unit of work.

    Attributes:
        commit_wait: Seconds the worker's writers (the publish activity, the activity-side
            interceptor) wait for a commit before going on without it; the write stays
            queued and commits when the database answers again.
    """

    commit_wait: float = 3.0

    def __init__(self, engine: AsyncEngine, *, database_url: str | None = None) -> None:
        self.engine = engine
        self.database_url = database_url or engine.url.render_as_string(hide_password=False)
        self.metrics = MirrorMetrics()
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        self._sql = Statements(engine.dialect.name)
        self._projection = Projection(self._sql, self.metrics)
        self._commit = GroupCommit(engine, self._projection.known_definitions.clear, self.metrics)
        self._closers: list[Callable[[], Awaitable[None]]] = []

    @classmethod
    def from_url(cls, database_url: str, **engine_options: Any) -> MirrorWriter:
        """A writer for ``database_url`` (``sqlite+aiosqlite:///...`` or ``postgresql+asyncpg://...``)."""
        engine_options.setdefault("sqlite_begin_immediate", True)
        return cls(create_engine(database_url, **engine_options), database_url=database_url)

    async def upgrade_schema(self) -> None:
        """Create or upgrade the tables (Alembic migrations to head)."""
        from sdk.mirror._migrate import upgrade

        await upgrade(self.database_url)

    def on_close(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Have :meth:`close` await ``closer`` first (background work that uses the writer)."""
        self._closers.append(closer)

    async def close(self) -> None:
        """Stop the background work using the writer, wait for queued writes (a bounded
        time while the database is unavailable), then release the connections."""
        for closer in self._closers:
            await closer()
        self._closers.clear()
        await self._commit.close()
        await self.engine.dispose()

    @property
    def available(self) -> bool:
        """False while the database is known to be unavailable (writes are queued meanwhile)."""
        return not self._commit.unavailable

    async def _transaction(
        self,
        work: Work,
        *,
        wait: float | None = None,
        on_commit: Callable[[], None] | None = None,
        salvage: Work | None = None,
        on_salvaged: Callable[[BaseException], None] | None = None,
    ) -> bool:
        """Run ``work`` in a transaction shared with the other writes queued meanwhile.

        Concurrent writers (hundreds of workflows publishing at once) would otherwise pay a
        transaction each and, on SQLite, queue on the write lock. If the group fails, each
        write is retried alone so one bad write fails only its own caller. While the database
        is unavailable writes stay queued in order (see ``_commit``). Returns True once the
        rows are committed, False when ``wait`` seconds passed first (the rows follow).
        """
        try:
            committed = await self._commit.run(
                work, wait=wait, on_commit=on_commit, salvage=salvage, on_salvaged=on_salvaged
            )
        except Exception:
            self.metrics.failures += 1
            raise
        if not committed:
            self.metrics.deferred += 1
        return committed

    async def ping(self) -> bool:
        """True when the database answers."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(select(1))
            return True
        except Exception:
            return False

    # -- definitions ----------------------------------------------------------------------

    async def register_definitions(
        self, definitions: Iterable[WorkflowDefinition[..., Any]] | None = None
    ) -> dict[str, uuid.UUID]:
        """Upsert one row per (name, version) and mark each name's active version.

        Returns the row id of each definition by Temporal workflow type.
        """
        defs = list(registry.workflows.values()) if definitions is None else list(definitions)
        ids: dict[str, uuid.UUID] = {}
        async with self.engine.begin() as conn:
            for definition in defs:
                row_id = definition_id_for(definition.workflow_type)
                ids[definition.workflow_type] = row_id
                values = {
                    "id": row_id,
                    "name": definition.name,
                    "version": definition.version,
                    "workflow_type": definition.workflow_type,
                    "description": definition.description,
                    "definition_json": definition.to_json(),
                    "is_active": False,
                    "created_at": _now(),
                    "updated_at": _now(),
                }
                stmt = self._insert(_definitions).values(values)
                await conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["id"],
                        set_={
                            "description": stmt.excluded.description,
                            "definition_json": stmt.excluded.definition_json,
                            "updated_at": stmt.excluded.updated_at,
                        },
                    )
                )
            for name in {d.name for d in defs}:
                known = {d.version for d in registry.versions(name)} | {
                    d.version for d in defs if d.name == name
                }
                try:
                    active = registry.active(name).version
                except LookupError:
                    active = max(known)
                await conn.execute(
                    update(_definitions)
                    .where(_definitions.c.name == name)
                    .values(is_active=_definitions.c.version == active, updated_at=_now())
                )
        return ids

    # -- workflow-side events ---------------------------------------------------------------

    async def write_batch(
        self, batch: EventBatch, events: Sequence[ev.WorkflowEvent], *, wait: float | None = None
    ) -> bool:
        """Apply one batch of events in one transaction (the publish activity calls this).

        Returns True once committed; with ``wait``, False when the database did not commit
        within that many seconds (the batch stays queued, in order, and commits later).

        Never raises for a batch the database refuses for good (a constraint, a value a
        column cannot hold): its statements are then written one by one, those refused are
        dropped, and one error line and the ``unwritable_batches`` and ``dropped_writes``
        counters report it, so nothing retries it forever and the instance goes on.
        ``dwf mirror audit`` names the rows that are missing.
        """
        plan = self.plan_batch(batch, events)
        self._report_replaced(plan.replaced, batch.workflow_id)

        async def salvage(conn: AsyncConnection) -> None:
            try:
                await plan.salvage(conn)
            except Exception as exc:
                plan.dropped.append(f"the whole batch: {_one_line(exc)}")
                raise

        def salvaged(error: BaseException) -> None:
            if not plan.dropped:
                self._committed(plan, batch, events)  # every statement went through alone
            self.metrics.unwritable += 1
            self.metrics.dropped += len(plan.dropped)
            logger.error(
                "mirror: the database refused a batch of workflow %s for good (%s); %d of its "
                "writes were dropped [%s], the rest written; the instance goes on. "
                "`dwf mirror audit` names what is missing",
                batch.workflow_id,
                _one_line(error),
                len(plan.dropped),
                "; ".join(plan.dropped)[:1000],
            )

        return await self._transaction(
            plan.execute,
            wait=wait,
            on_commit=lambda: self._committed(plan, batch, events),
            salvage=salvage,
            on_salvaged=salvaged,
        )

    def _report_replaced(self, replaced: list[str], workflow_id: str) -> None:
        """One warning per write that holds values no database stores alike (replaced)."""
        if not replaced:
            return
        self.metrics.unstorable += len(replaced)
        shown = ", ".join(sorted({f.encode("unicode_escape").decode() for f in replaced}))[:500]
        logger.warning(
            "mirror: workflow %s produced %d value(s) no database stores alike (NUL, NaN, "
            "infinity, a number out of range) in %s; written replaced (U+FFFD for a character, "
            "the number's text for a number)",
            workflow_id,
            len(replaced),
            shown,
        )

    def _committed(self, plan: BatchPlan, batch: EventBatch, events: Sequence[ev.WorkflowEvent]) -> None:
        plan.committed()
        committed = _now()
        self.metrics.batches += 1
        for item, event in zip(batch.events, events, strict=True):
            # Non-urgent events ride along with a later flush; their rows were written earlier.
            if item.get("urgent", True):
                self.metrics.observe_lag(max(0.0, (committed - event.timestamp).total_seconds()))

    def plan_batch(self, batch: EventBatch, events: Sequence[ev.WorkflowEvent]) -> BatchPlan:
        """The statements that apply ``events``: instance changes folded into one, then rows."""
        return self._projection.plan_batch(batch, events)

    # -- activity-side attempts -------------------------------------------------------------

    async def step_attempt_started(
        self,
        *,
        step_execution_id: uuid.UUID,
        instance_id: uuid.UUID,
        workflow_id: str,
        step_name: str,
        step_seq: int,
        attempt: int,
        input_data: dict[str, Any] | None,
        started_at: datetime,
        carried: tuple[EventBatch, Sequence[ev.WorkflowEvent]] | None = None,
        wait: float | None = None,
    ) -> bool:
        """Record that an attempt of a machine step began (before the author's code runs).

        ``carried`` is the batch of events the step's activity carried in its header: it is
        applied first, in the same transaction. Returns as :meth:`write_batch` does.
        """
        values = {
            "id": step_execution_id,
            "instance_id": instance_id,
            "step_name": step_name,
            "step_type": StepType.MACHINE,
            "status": StepStatus.RUNNING,
            "input_data": input_data,
            "started_at": started_at,
            "workflow_id": workflow_id,
            "step_seq": step_seq,
            "attempts": attempt,
            "created_at": _now(),
            "updated_at": _now(),
        }

        replaced: list[str] = []
        values = storable_params(values, replaced)
        self._report_replaced(replaced, workflow_id)
        plan = self.plan_batch(*carried) if carried is not None else None
        if plan is not None:
            self._report_replaced(plan.replaced, workflow_id)
        set_current_step = plan is None or not plan.sets_current_step(step_name)
        # The first attempt's row is the one the step's own StepStarted inserts, when carried.
        write_attempt = plan is None or attempt > 1 or step_execution_id not in plan.started_steps

        async def work(conn: AsyncConnection) -> None:
            if plan is not None:
                await plan.execute(conn)
            if write_attempt:
                result = await conn.execute(self._sql.attempt_started(), values)
                self.metrics.rows_written += result.rowcount or 0
            if set_current_step:
                await conn.execute(
                    self._sql.instance_current_step(),
                    {"b_id": instance_id, "v_current_step": step_name, "v_updated_at": _now()},
                )

        def committed() -> None:
            if plan is not None and carried is not None:
                self._committed(plan, *carried)
            self.metrics.observe_lag(max(0.0, (_now() - started_at).total_seconds()))

        return await self._transaction(work, wait=wait, on_commit=committed)

    async def step_recorded(self, step_execution_id: uuid.UUID) -> bool:
        """Whether the step's row exists (a retried attempt asks: were its carried events written?).

        False when the database cannot say (unavailable): the caller writes them again, which
        is idempotent.
        """
        if not self.available:
            return False
        try:
            async with self.engine.connect() as conn:
                found = await conn.execute(select(_steps.c.id).where(_steps.c.id == step_execution_id))
                return found.first() is not None
        except Exception:
            return False

    async def step_attempt_finished(
        self,
        *,
        step_execution_id: uuid.UUID,
        attempt: int,
        output_data: dict[str, Any] | None = None,
        error: str | None = None,
        final: bool = False,
        wait: float | None = None,
    ) -> bool:
        """Record the end of an attempt: success, or an error (final when not retried).

        Applies unless the row already holds a later attempt, or this attempt's end. Returns
        as :meth:`write_batch` does.
        """
        t0 = time.monotonic()
        finished = _now()
        if error is None:
            values: dict[str, Any] = {
                "status": StepStatus.SUCCEEDED,
                "output_data": output_data,
                "completed_at": finished,
                "error": None,
            }
        else:
            values = {"error": error}
            if final:
                values.update(status=StepStatus.FAILED, completed_at=finished)
        values.update(attempts=attempt, updated_at=finished)

        stmt = self._sql.attempt_finished(tuple(values))
        replaced: list[str] = []
        params = storable_params({f"v_{col}": value for col, value in values.items()}, replaced)
        self._report_replaced(replaced, str(step_execution_id))
        params["b_id"] = step_execution_id
        params["b_attempt"] = attempt

        async def work(conn: AsyncConnection) -> None:
            result = await conn.execute(stmt, params)
            self.metrics.rows_written += result.rowcount or 0

        return await self._transaction(
            work, wait=wait, on_commit=lambda: self.metrics.observe_lag(time.monotonic() - t0)
        )


def _one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
