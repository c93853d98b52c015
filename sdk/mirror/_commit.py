"""Group commit: the writes queued meanwhile share one transaction."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["GroupCommit", "Work"]

Work = Callable[[AsyncConnection], Awaitable[None]]
_GROUP_LIMIT = 256
"""Most writes committed in one transaction."""


class GroupCommit:
    """Runs units of work on ``engine``, many per transaction (see :meth:`run`).

    ``on_group_failure`` is called when a shared transaction fails, before each of its
    writes is retried alone.
    """

    def __init__(self, engine: AsyncEngine, on_group_failure: Callable[[], None] | None = None) -> None:
        self.engine = engine
        self._on_group_failure = on_group_failure
        self._pending: list[tuple[Work, asyncio.Future[None]]] = []
        self._wakeup: asyncio.Event | None = None
        self._committer: asyncio.Task[None] | None = None

    async def close(self) -> None:
        """Wait for queued writes; fail those that cannot run any more."""
        while self._pending and self._committer is not None and not self._committer.done():
            await asyncio.gather(*(future for _, future in self._pending), return_exceptions=True)
        for _, future in self._pending:
            if not future.done():
                future.set_exception(RuntimeError("the mirror writer was closed before this write ran"))
        self._pending = []
        if self._committer is not None and not self._committer.done():
            self._committer.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await self._committer
        self._committer = None

    async def run(self, work: Work) -> None:
        """Run ``work`` in a transaction shared with the other writes queued meanwhile.

        Concurrent writers (hundreds of workflows publishing at once) would otherwise pay a
        transaction each and, on SQLite, queue on the write lock. One committer task takes
        everything queued, runs it in one transaction and wakes every writer after the
        commit; if the group fails, each write is retried alone so one bad write fails only
        its own caller. The caller returns only once its rows are committed.
        """
        loop = asyncio.get_running_loop()
        if self._committer is None or self._committer.done() or self._committer.get_loop() is not loop:
            self._wakeup = asyncio.Event()
            self._committer = loop.create_task(self._commit_loop(self._wakeup))
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append((work, future))
        assert self._wakeup is not None
        self._wakeup.set()
        await future

    async def _commit_loop(self, wakeup: asyncio.Event) -> None:
        while True:
            await wakeup.wait()
            wakeup.clear()
            group, self._pending = self._pending[:_GROUP_LIMIT], self._pending[_GROUP_LIMIT:]
            if self._pending:
                wakeup.set()
            if not group:
                continue
            try:
                async with self.engine.begin() as conn:
                    for work, _ in group:
                        await work(conn)
            except Exception:
                if self._on_group_failure is not None:
                    self._on_group_failure()
                for work, future in group:
                    try:
                        async with self.engine.begin() as conn:
                            await work(conn)
                    except Exception as exc:
                        if not future.done():
                            future.set_exception(exc)
                    else:
                        if not future.done():
                            future.set_result(None)
                continue
            for _, future in group:
                if not future.done():
                    future.set_result(None)
