"""The web inbox of ``dwf dev``: the inbox application beside the dev server and the worker.

Served by uvicorn in the ``dwf dev`` process on plain HTTP at 127.0.0.1, with development
sign-in only (pick a user: the ``--dev-users`` file, or :data:`DEFAULT_DEV_USERS`, who fit the
expense example) and a session secret that lives as long as the process. It stops when the
worker stops; signals are left to ``dwf dev``, which stops everything in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Iterator
from typing import Any

from sdk import Identity

__all__ = ["DEFAULT_DEV_USERS", "DEFAULT_INBOX_PORT", "DevInbox"]

DEFAULT_INBOX_PORT = 8080
DEFAULT_DEV_USERS = {
    "ann": Identity(user="ann", groups=("employees",), tenant_id="acme"),
    "bob": Identity(user="bob", groups=("managers",), tenant_id="acme"),
    "cara": Identity(user="cara", groups=("managers",), tenant_id="acme"),
}
"""Who may sign in to ``dwf dev``'s inbox by default: the expense example's people, tenant acme."""


class DevInbox:
    """The inbox application served on ``port`` until :meth:`stop`.

    Args:
        address: Temporal's frontend.
        namespace: Its namespace.
        task_queue: The worker's task queue (instances started from the inbox go there).
        database_url: The mirror the inbox reads (migrated before serving).
        port: The HTTP port on 127.0.0.1.
        users: Who may sign in (development sign-in).
    """

    def __init__(
        self,
        *,
        address: str,
        namespace: str,
        task_queue: str,
        database_url: str,
        port: int,
        users: dict[str, Identity],
    ) -> None:
        self.address = address
        self.namespace = namespace
        self.task_queue = task_queue
        self.database_url = database_url
        self.port = port
        self.users = users
        self._server: Any = None
        self._client: Any = None

    @property
    def url(self) -> str:
        """Where the page is."""
        return f"http://127.0.0.1:{self.port}/"

    async def serve(self) -> None:
        """Migrate the mirror, connect a client, and serve until :meth:`stop`."""
        import uvicorn

        from sdk import WorkflowClient
        from sdk.inbox import SessionConfig, create_inbox_app
        from sdk.mirror import upgrade

        class _Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                # dwf dev owns SIGINT/SIGTERM: it stops the worker, then this server.
                yield

        await upgrade(self.database_url)
        self._client = await WorkflowClient.connect(
            self.address,
            namespace=self.namespace,
            task_queue=self.task_queue,
            database_url=self.database_url,
        )
        sessions = SessionConfig(secrets.token_urlsafe(32), dev_users=self.users, secure=False)
        app = create_inbox_app(self._client, sessions=sessions)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self._server = _Server(config)
        try:
            await self._server.serve()
        finally:
            await self._client.close()

    def stop(self) -> None:
        """Ask the server to finish (it closes its connections, then :meth:`serve` returns)."""
        if self._server is not None:
            self._server.should_exit = True

    async def wait_started(self, serving: asyncio.Task[None], timeout: float = 15.0) -> None:
        """Wait until the server listens (or fails: its error is raised)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not (self._server is not None and self._server.started):
            if serving.done():
                serving.result()
                raise RuntimeError("the web inbox stopped before it started")
            if loop.time() > deadline:
                raise RuntimeError(f"the web inbox did not start within {timeout:g}s")
            await asyncio.sleep(0.05)
