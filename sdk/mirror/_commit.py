"""Group commit: the writes queued meanwhile share one transaction, and wait out outages.

The queue is also the writer's backlog while the database is unavailable: a write that
cannot commit stays at its place in the queue and is retried, with backoff, until the
database answers again; the writes behind it keep their order. A caller may wait a bounded
time for its commit (:meth:`GroupCommit.run` with ``wait``) and go on without it: the row
arrives when the database returns. So the mirror's availability delays rows; it never fails
the work that produced them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ._metrics import MirrorMetrics

__all__ = ["GroupCommit", "Work", "database_unavailable"]

logger = logging.getLogger("dwf.mirror")

Work = Callable[[AsyncConnection], Awaitable[None]]
_GROUP_LIMIT = 256
"""Most writes committed in one transaction."""
_BACKOFF_FIRST = 0.2
_BACKOFF_MAX = 5.0
_SLOW_GROUP = 3.0
"""Seconds a transaction may take before the database counts as unavailable."""


_TRANSIENT_SQLSTATES = ("08", "53", "57", "40", "55", "25006", "58")
"""PostgreSQL error classes that say "not now": connection, resources, operator intervention
(shutdown, starting up), a rolled-back transaction (deadlock, serialization), a lock not
available, a read-only standby after a failover, a system error."""


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be used now (rather than that a write is bad).

    A bad write (a constraint, a value the column cannot hold, a missing table) can never
    succeed: it is reported and dropped (see :meth:`GroupCommit.run`'s ``salvage``). An
    unavailable database (refused or lost connection, a server shutting down, a deadlock, a
    locked or read-only SQLite file, a pool timeout) holds the queue until it answers again.
    PostgreSQL says which with its SQLSTATE; asyncpg's own client-side encoding errors are bad
    writes too.
    """
    if isinstance(exc, sa_exc.IntegrityError | sa_exc.DataError | sa_exc.ProgrammingError):
        return False
    if isinstance(exc, sa_exc.DBAPIError):
        sqlstate = getattr(exc.orig, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate:
            return sqlstate.startswith(_TRANSIENT_SQLSTATES)
        # Not so: asyncpg could not encode a value; SQLite has no such table or column.
        return not (_caused_by(exc, "DataError") or "no such" in str(exc.orig))
    if isinstance(exc, sa_exc.TimeoutError):
        return True
    return isinstance(exc, OSError | TimeoutError | ConnectionError)


def _caused_by(exc: BaseException, name: str) -> bool:
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if type(seen).__name__ == name and type(seen).__module__.startswith("asyncpg"):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class _Item:
    __slots__ = ("future", "on_commit", "on_salvaged", "salvage", "work")

    def __init__(
        self,
        work: Work,
        future: asyncio.Future[None],
        on_commit: Callable[[], None] | None,
        salvage: Work | None = None,
        on_salvaged: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.work = work
        self.future = future
        self.on_commit = on_commit
        self.salvage = salvage
        self.on_salvaged = on_salvaged


class GroupCommit:
    """Runs units of work on ``engine``, many per transaction, in order (see :meth:`run`).

    ``on_group_failure`` is called when a shared transaction fails, before each of its
    writes is retried alone. ``metrics`` receives the outage gauge and counters.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        on_group_failure: Callable[[], None] | None = None,
        metrics: MirrorMetrics | None = None,
    ) -> None:
        self.engine = engine
        self._on_group_failure = on_group_failure
        self.metrics = metrics if metrics is not None else MirrorMetrics()
        self._pending: list[_Item] = []
        self._wakeup: asyncio.Event | None = None
        self._committer: asyncio.Task[None] | None = None
        self._outage_since: float | None = None  # monotonic time the current outage began
        self._group_since: float | None = None  # monotonic time the transaction in flight began

    @property
    def unavailable(self) -> bool:
        """Whether the database is known to be unavailable (writes are being held)."""
        if self._outage_since is not None:
            return True
        return self._group_since is not None and time.monotonic() - self._group_since > _SLOW_GROUP

    @property
    def backlog(self) -> int:
        """Writes queued and not committed yet."""
        return len(self._pending)

    async def close(self, timeout: float = 10.0) -> None:
        """Wait for queued writes (up to ``timeout`` seconds); fail those that cannot run any more."""
        deadline = time.monotonic() + timeout
        while self._pending and self._committer is not None and not self._committer.done():
            left = deadline - time.monotonic()
            if left <= 0:
                logger.error(
                    "the mirror writer closed with %d writes not committed (database unavailable); "
                    "run `dwf mirror rebuild` to restore their rows",
                    len(self._pending),
                )
                break
            futures = [item.future for item in self._pending]
            await asyncio.wait(futures, timeout=left)
        for item in self._pending:
            if not item.future.done():
                item.future.set_exception(RuntimeError("the mirror writer was closed before this write ran"))
        self._pending = []
        if self._committer is not None and not self._committer.done():
            self._committer.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await self._committer
        self._committer = None
        self._set_backlog()

    async def run(
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
        transaction each and, on SQLite, queue on the write lock. One committer task takes
        everything queued, runs it in one transaction and wakes every writer after the
        commit; if the group fails, each write is retried alone so one bad write fails only
        its own caller. While the database is unavailable the writes stay queued, in order.

        Args:
            work: Executes the write's statements on the connection it is given.
            wait: Seconds to wait for the commit; None waits as long as it takes. While an
                outage is known the call does not wait at all.
            on_commit: Called once the write is committed (now or after an outage).
            salvage: What to run instead when ``work`` fails for a reason other than an
                unavailable database, so it can never succeed: e.g. each statement alone,
                skipping those the database refuses. Then the caller does not fail (nothing
                retries it forever) and ``on_salvaged`` is called with the error to report it.
                Without ``salvage`` such a failure fails the caller.
            on_salvaged: Called once ``salvage`` ran (or failed too), with ``work``'s error.

        Returns:
            True once committed; False when the write is still queued (it commits when the
            database returns; a write that then fails for another reason is logged).

        Raises:
            Exception: The write failed for a reason other than an unavailable database.
        """
        loop = asyncio.get_running_loop()
        if self._committer is None or self._committer.done() or self._committer.get_loop() is not loop:
            self._wakeup = asyncio.Event()
            self._committer = loop.create_task(self._commit_loop(self._wakeup))
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append(_Item(work, future, on_commit, salvage, on_salvaged))
        self._set_backlog()
        assert self._wakeup is not None
        self._wakeup.set()
        if wait is None:
            await future
            return True
        if self.unavailable:
            wait = 0.0
        done, _ = await asyncio.wait([future], timeout=wait)
        if done:
            future.result()
            return True
        self._note_outage(f"a write took longer than {wait:.1f}s")
        future.add_done_callback(_log_late_failure)
        return False

    def _set_backlog(self) -> None:
        self.metrics.backlog = len(self._pending)

    def _note_outage(self, reason: str) -> None:
        if self._outage_since is not None:
            return
        self._outage_since = time.monotonic()
        self.metrics.outage = True
        self.metrics.outages += 1
        logger.warning(
            "mirror database unavailable (%s): rows are queued in order and written when it returns; "
            "workflows go on",
            reason,
        )

    def _outage_over(self) -> None:
        if self._outage_since is None:
            return
        lasted = time.monotonic() - self._outage_since
        self._outage_since = None
        self.metrics.outage = False
        logger.warning("mirror database available again after %.1fs; queued rows caught up", lasted)

    async def _commit_loop(self, wakeup: asyncio.Event) -> None:
        backoff = _BACKOFF_FIRST
        while True:
            await wakeup.wait()
            wakeup.clear()
            while self._pending:
                group = self._pending[:_GROUP_LIMIT]
                try:
                    self._group_since = time.monotonic()
                    await self._commit(group)
                except Exception as exc:
                    if database_unavailable(exc):
                        self._note_outage(_one_line(exc))
                        await asyncio.sleep(backoff)
                        backoff = min(backoff * 2, _BACKOFF_MAX)
                        continue  # the same group again: nothing behind it goes first
                    if self._on_group_failure is not None:
                        self._on_group_failure()
                    if not await self._commit_one_by_one(group):
                        await asyncio.sleep(backoff)
                        backoff = min(backoff * 2, _BACKOFF_MAX)
                        continue
                finally:
                    self._group_since = None
                backoff = _BACKOFF_FIRST
                self._outage_over()

    async def _commit(self, group: list[_Item]) -> None:
        async with self.engine.begin() as conn:
            for item in group:
                await item.work(conn)
        del self._pending[: len(group)]
        self._set_backlog()
        for item in group:
            _settle(item, None)

    async def _commit_one_by_one(self, group: list[_Item]) -> bool:
        """Each write of a failed group alone; False if the database became unavailable."""
        for item in group:
            try:
                async with self.engine.begin() as conn:
                    await item.work(conn)
            except Exception as exc:
                if database_unavailable(exc):
                    self._note_outage(_one_line(exc))
                    return False
                if item.salvage is not None and not await self._salvage(item, exc):
                    return False
                self._pending.remove(item)
                if not item.future.done():
                    item.future.set_exception(exc)
            else:
                self._pending.remove(item)
                _settle(item, None)
            self._set_backlog()
        return True

    async def _salvage(self, item: _Item, error: BaseException) -> bool:
        """Write what can be written of a write that can never succeed whole; False if the
        database became unavailable meanwhile. Settles the caller's future without an error."""
        assert item.salvage is not None
        try:
            async with self.engine.begin() as conn:
                await item.salvage(conn)
        except Exception as exc:
            if database_unavailable(exc):
                self._note_outage(_one_line(exc))
                return False
            error = exc  # not even a part could be written: all of it is dropped
        if not item.future.done():
            item.future.set_result(None)
        if item.on_salvaged is not None:
            try:
                item.on_salvaged(error)
            except Exception:
                logger.exception("a mirror salvage callback failed")
        return True


def _settle(item: _Item, _: None) -> None:
    if item.future.done():
        return
    item.future.set_result(None)
    if item.on_commit is not None:
        try:
            item.on_commit()
        except Exception:
            logger.exception("a mirror commit callback failed")


def _log_late_failure(future: asyncio.Future[None]) -> None:
    if future.cancelled():
        return
    exc = future.exception()
    if exc is not None:
        logger.warning("a queued mirror write failed after the database returned: %s", _one_line(exc))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
