"""Where ``dwf`` connects: the global options over their ``DWF_*`` variables over the defaults.

They are the worker's connection settings (the same variables, defaults and rules, so
``DWF_TEMPORAL_ADDRESS`` means the same thing to ``dwf tasks list`` as to the worker), read
here without importing the worker: only ``dwf worker`` and ``dwf dev`` load it. A bad value is
a usage error (exit 2) naming the flag or the variable it came from.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from sdk import DEFAULT_TASK_QUEUE, DefinitionError, WorkflowClient, connection

from ._exit import CannotConnectError, UsageError, temporal_connect_reason

__all__ = [
    "CLIENT_SETTLE",
    "CONNECT_TIMEOUT",
    "SETTINGS",
    "Setting",
    "Target",
    "connect",
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


def _usage(check: Callable[[str], Any]) -> Callable[[str, str], Any]:
    """``check`` (from ``sdk.connection``, the worker's rules) failing as a usage error naming
    the flag or variable the value came from."""

    def parse(raw: str, source: str) -> Any:
        try:
            return check(raw)
        except ValueError as exc:
            raise UsageError(f"{source}: {exc}") from None

    return parse


_address = _usage(connection.address)
_text = _usage(connection.nonempty)
_database_url = _usage(connection.database_url)
_modules = _usage(connection.modules)
_bool = _usage(connection.boolean)
_file = _usage(connection.readable_file)


@dataclass(frozen=True)
class Setting:
    """One connection setting: its field, variable, global flag (None: variable only) and parser."""

    field: str
    env: str
    flag: str | None
    parse: Callable[[str, str], Any]


SETTINGS = (
    Setting("address", "DWF_TEMPORAL_ADDRESS", "--address", _address),
    Setting("namespace", "DWF_TEMPORAL_NAMESPACE", "--namespace", _text),
    Setting("task_queue", "DWF_TASK_QUEUE", "--task-queue", _text),
    Setting("database_url", "DWF_DATABASE_URL", "--database-url", _database_url),
    Setting("app", "DWF_APP", "--app", _modules),
    Setting("tls", "DWF_TEMPORAL_TLS", None, _bool),
    Setting("tls_cert", "DWF_TEMPORAL_TLS_CERT", None, _file),
    Setting("tls_key", "DWF_TEMPORAL_TLS_KEY", None, _file),
    Setting("tls_ca", "DWF_TEMPORAL_TLS_CA", None, _file),
    Setting("api_key", "DWF_TEMPORAL_API_KEY", None, _text),
)
"""The settings every command shares, in the worker's names (``dwf worker`` passes them on)."""


@dataclass(frozen=True, kw_only=True)
class Target:
    """The resolved connection settings (the worker's defaults for what is not given).

    TLS and the Temporal Cloud API key come from the worker's variables only
    (``DWF_TEMPORAL_TLS``, ``DWF_TEMPORAL_TLS_CERT``/``_KEY``/``_CA``, ``DWF_TEMPORAL_API_KEY``).
    """

    address: str = "localhost:7233"
    namespace: str = "default"
    task_queue: str = DEFAULT_TASK_QUEUE
    database_url: str = "sqlite+aiosqlite:///dwf.db"
    app: tuple[str, ...] = ()
    tls: bool | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None
    api_key: str | None = None

    @property
    def database_shown(self) -> str:
        """The database URL with its password hidden."""
        return make_url(self.database_url).render_as_string(hide_password=True)

    @classmethod
    def resolve(cls, flags: Mapping[str, str | None], environ: Mapping[str, str] | None = None) -> Target:
        """The settings from the global ``flags`` given (by field), else ``environ``'s variables
        (by default the environment, then a ``.env`` file in the current directory, as the worker
        reads them).

        Raises:
            UsageError: A flag or variable has a malformed value (exit 2).
        """
        environ = _environment() if environ is None else environ
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            flag_value = flags.get(setting.field)
            if flag_value is not None and setting.flag is not None:
                values[setting.field] = setting.parse(flag_value.strip(), setting.flag)
            elif environ.get(setting.env, "").strip():
                values[setting.field] = setting.parse(environ[setting.env].strip(), setting.env)
        if (values.get("tls_cert") is None) != (values.get("tls_key") is None):
            raise UsageError(
                "DWF_TEMPORAL_TLS_CERT and DWF_TEMPORAL_TLS_KEY go together: give both or neither"
            )
        return cls(**values)

    def client_tls(self) -> Any:
        """``tls=`` for ``WorkflowClient.connect``: False, True, or a ``TLSConfig``.

        TLS is on when asked for, or implied by a certificate, a CA or an API key.
        """
        implied = any(v is not None for v in (self.tls_cert, self.tls_ca, self.api_key))
        if self.tls_cert is None and self.tls_ca is None:
            return bool(self.tls) or (self.tls is None and implied)
        from temporalio.service import TLSConfig

        def read(path: Path | None) -> bytes | None:
            return path.read_bytes() if path is not None else None

        return TLSConfig(
            server_root_ca_cert=read(self.tls_ca),
            client_cert=read(self.tls_cert),
            client_private_key=read(self.tls_key),
        )


def _environment() -> Mapping[str, str]:
    """The process's environment over the ``.env`` file of the current directory, if any."""
    if not os.path.isfile(".env"):
        return os.environ
    from dotenv import dotenv_values

    return {**{k: v for k, v in dotenv_values(".env").items() if v is not None}, **os.environ}


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
                api_key=target.api_key,
                tls=target.client_tls(),
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
