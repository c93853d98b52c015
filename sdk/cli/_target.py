"""Where a command connects: the global options over the worker's ``DWF_*`` variables.

The command line and the worker read the same variables with the same parsers
(``worker._settings.OPTIONS``), so ``DWF_TEMPORAL_ADDRESS`` means the same thing to
``dwf tasks list`` as to the worker, and a bad value gets the same one-line error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import os
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from sdk import DefinitionError, WorkflowClient
from worker._settings import OPTIONS, SettingOption, WorkerSettings

from ._exit import CannotConnectError, UsageError, temporal_connect_reason

__all__ = [
    "CLIENT_SETTLE",
    "CONNECT_TIMEOUT",
    "GLOBAL_FLAGS",
    "Target",
    "connect",
    "global_dest",
    "import_app",
    "open_client",
    "open_queries",
    "require_database",
    "sqlite_path",
]

CONNECT_TIMEOUT = 15.0
"""Seconds to wait for the Temporal frontend before giving up (exit 7)."""

CLIENT_SETTLE = 0.1
"""Seconds the event loop keeps running after a Temporal client is done with.

temporalio's core calls back into Python shortly after a connection is made; when the
interpreter is already finalizing, that aborts the process (about 1 run in 4 for a command that
connects and exits at once; none with a pause of 20 ms or more: docs/temporal-facts.md).
"""

GLOBAL_FLAGS: dict[str, str] = {
    "temporal_address": "--address",
    "temporal_namespace": "--namespace",
    "task_queue": "--task-queue",
    "database_url": "--database-url",
    "app": "--app",
}
"""The global flags, by the :class:`worker._settings.WorkerSettings` field they set."""

_ENV_ONLY = ("temporal_api_key", "temporal_tls", "temporal_tls_cert", "temporal_tls_key", "temporal_tls_ca")


def global_dest(field: str) -> str:
    """The argparse destination of a global flag.

    Prefixed so that ``dwf worker``'s own flags (which set the plain field names, default None)
    cannot overwrite a global flag given before the command name.
    """
    return f"global_{field}"


def _option(field: str) -> SettingOption:
    return next(o for o in OPTIONS if o.field == field)


@dataclass(frozen=True, kw_only=True)
class Target:
    """The resolved global options: a flag, else its ``DWF_*`` variable, else the worker's default.

    TLS and the Temporal Cloud API key come from the worker's variables only
    (``DWF_TEMPORAL_TLS``, ``DWF_TEMPORAL_TLS_CERT``/``_KEY``/``_CA``, ``DWF_TEMPORAL_API_KEY``).
    """

    settings: WorkerSettings

    @property
    def address(self) -> str:
        return self.settings.temporal_address

    @property
    def namespace(self) -> str:
        return self.settings.temporal_namespace

    @property
    def task_queue(self) -> str:
        return self.settings.task_queue

    @property
    def database_url(self) -> str:
        return self.settings.database_url

    @property
    def database_shown(self) -> str:
        """The database URL with its password hidden."""
        return self.settings.database_url_redacted

    @property
    def app(self) -> tuple[str, ...]:
        return self.settings.app

    @classmethod
    def resolve(cls, args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Target:
        """Resolve the global options of parsed ``args``.

        Raises:
            ConfigurationError: A flag or variable has a malformed value (exit 2).
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in (*GLOBAL_FLAGS, *_ENV_ONLY):
            option = _option(field)
            flag_value = getattr(args, global_dest(field), None)
            if flag_value is not None:
                source, raw = GLOBAL_FLAGS[field], str(flag_value)
            elif environ.get(option.env, "").strip():
                source, raw = option.env, environ[option.env]
            else:
                continue
            values[field] = option.parse(raw.strip(), source)
        return cls(settings=WorkerSettings(**values))

    def tls(self) -> Any:
        """``tls=`` for ``WorkflowClient.connect``: False, True, or a ``TLSConfig``."""
        settings = self.settings
        if settings.temporal_tls_cert is None and settings.temporal_tls_ca is None:
            return settings.use_tls
        from temporalio.service import TLSConfig

        def read(path: Path | None) -> bytes | None:
            return path.read_bytes() if path is not None else None

        return TLSConfig(
            server_root_ca_cert=read(settings.temporal_tls_ca),
            client_cert=read(settings.temporal_tls_cert),
            client_private_key=read(settings.temporal_tls_key),
        )


def import_app(modules: tuple[str, ...]) -> None:
    """Import the application's modules so their ``@workflow`` definitions are registered.

    The current directory is importable, as for ``python -m``.

    Raises:
        UsageError: A module cannot be imported or defines a workflow badly.
    """
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in modules:
        try:
            importlib.import_module(name)
        except (ImportError, SyntaxError) as exc:
            raise UsageError(f"--app: cannot import {name!r}: {exc}") from exc
        except DefinitionError as exc:
            raise UsageError(f"--app: {name!r} defines a workflow badly: {exc}") from exc


def sqlite_path(database_url: str) -> Path | None:
    """The file of a SQLite URL, or None (another database, or in memory)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    if url.database.startswith("file:"):
        return None
    return Path(url.database)


def require_database(target: Target) -> None:
    """Fail with exit 7 when the mirror is a SQLite file that does not exist.

    Opening it would create an empty file (and then fail on the missing tables).
    """
    path = sqlite_path(target.database_url)
    if path is not None and not path.exists():
        raise CannotConnectError(
            f"no mirror database at {path}: create it with 'dwf db upgrade' (or run 'dwf dev'), "
            "or point --database-url / DWF_DATABASE_URL at yours"
        )


async def connect(target: Target, *, database: bool) -> WorkflowClient:
    """A client of ``target``'s Temporal (and mirror, with ``database``).

    Raises:
        CannotConnectError: The frontend does not answer within :data:`CONNECT_TIMEOUT`.
    """
    if database:
        require_database(target)
    try:
        return await asyncio.wait_for(
            WorkflowClient.connect(
                target.address,
                namespace=target.namespace,
                task_queue=target.task_queue,
                database_url=target.database_url if database else None,
                api_key=target.settings.temporal_api_key,
                tls=target.tls(),
            ),
            CONNECT_TIMEOUT,
        )
    except (TimeoutError, RuntimeError) as exc:
        await asyncio.sleep(CLIENT_SETTLE)  # a failed connection calls back late too
        reason = (
            f"no answer within {CONNECT_TIMEOUT:g}s"
            if isinstance(exc, TimeoutError)
            else temporal_connect_reason(exc)
        )
        raise CannotConnectError(f"cannot connect to Temporal at {target.address}: {reason}") from exc


@contextlib.asynccontextmanager
async def open_client(target: Target, *, database: bool = True) -> AsyncIterator[WorkflowClient]:
    """:func:`connect`, closing the client's database connections at the end."""
    client = await connect(target, database=database)
    try:
        yield client
    finally:
        await client.close()
        await asyncio.sleep(CLIENT_SETTLE)


@contextlib.asynccontextmanager
async def open_queries(target: Target) -> AsyncIterator[Any]:
    """The mirror's query API (``sdk.mirror.MirrorQueries``) without a Temporal connection."""
    from sdk.mirror import MirrorQueries, create_engine, session_factory

    require_database(target)
    engine = create_engine(target.database_url)
    try:
        yield MirrorQueries(session_factory(engine))
    finally:
        await engine.dispose()
