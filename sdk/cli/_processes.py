"""``dwf worker`` and ``dwf dev``: the commands that run until SIGTERM or Ctrl-C.

Both delegate to the worker process (``worker._process.run_worker``), which stops polling on
SIGTERM/SIGINT, lets in-flight activities finish, closes the mirror and then pauses a moment
(docs/temporal-facts.md) so the interpreter does not crash at exit. ``dev`` also starts the official
Temporal dev server first, and stops it, by its PID, after the worker is done.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket

from worker._settings import WorkerSettings

from ._context import Context
from ._exit import CommandError, ExitCode
from ._target import GLOBAL_FLAGS, global_dest

__all__ = ["DEFAULT_DEV_APP", "DEFAULT_DEV_DB_FILE", "DEFAULT_DEV_PORT", "dev", "worker"]

DEFAULT_DEV_APP = ("examples.expense_approval",)
DEFAULT_DEV_PORT = 7233
"""Temporal's usual port, so the other commands find the dev server without ``--address``."""
DEFAULT_DEV_DB_FILE = "dwf-temporal.db"
"""Temporal's state survives a restart, like the mirror's default ``dwf.db`` beside it (an
ephemeral server with a lasting mirror would leave the mirror describing instances that no
longer exist)."""


def worker_settings(args: argparse.Namespace) -> WorkerSettings:
    """``dwf worker``'s settings: its own flags, then the global flags given before ``worker``,
    then the ``DWF_*`` variables.

    Raises:
        ConfigurationError: A setting is missing or malformed (exit 2).
    """
    for field in GLOBAL_FLAGS:
        given = getattr(args, global_dest(field), None)
        if getattr(args, field, None) is None and given is not None:
            setattr(args, field, given)
    return WorkerSettings.load(args)


async def worker(ctx: Context) -> int:
    """Run the long-lived worker until SIGTERM or SIGINT."""
    from worker._process import configure_logging, run_worker

    settings = worker_settings(ctx.args)
    configure_logging(settings.log_level, settings.log_format)
    await run_worker(settings)
    return ExitCode.OK


def _check_port_free(port: int, flag: str) -> None:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise CommandError(
                f"port {port} is in use (another Temporal server?): choose another with {flag}"
            ) from None


def _trap_signals(stop: asyncio.Event) -> None:
    """SIGINT and SIGTERM set ``stop`` (instead of killing the process and orphaning the server)."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)


def _release_signals() -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(signum)


async def dev(ctx: Context) -> int:
    """The embedded development setup: Temporal's dev server plus a worker with the SQL mirror."""
    from sdk import DevServer
    from worker._process import configure_logging, run_worker

    a, target = ctx.args, ctx.target
    port = a.port or DEFAULT_DEV_PORT
    _check_port_free(port, "--port")
    ui_port = a.ui_port or port + 1000
    if a.ui:
        _check_port_free(ui_port, "--ui-port")
    app = target.app or DEFAULT_DEV_APP
    server = DevServer(
        port=port,
        db_filename=a.db_file,
        ui=a.ui,
        ui_port=ui_port if a.ui else None,
        namespace=target.namespace,
    )
    stop = asyncio.Event()
    _trap_signals(stop)
    try:
        try:
            await asyncio.to_thread(server.start)
        except RuntimeError as exc:
            raise CommandError(f"the Temporal dev server did not start: {exc}") from exc
        try:
            settings = WorkerSettings.load(
                argparse.Namespace(
                    temporal_address=server.target,
                    temporal_namespace=target.namespace,
                    task_queue=target.task_queue,
                    database_url=target.database_url,
                    app=",".join(app),
                    http_port=str(a.http_port),
                )
            )
            _announce(ctx, server.target, f"http://127.0.0.1:{ui_port}" if a.ui else None, settings)
            if not stop.is_set():
                configure_logging(settings.log_level, settings.log_format)
                # The worker installs its own SIGINT/SIGTERM handlers (setting the same event)
                # and removes them when it is done.
                await run_worker(settings, stop=stop)
        finally:
            _trap_signals(stop)  # a second Ctrl-C must not orphan the server
            await asyncio.to_thread(server.stop)
    finally:
        _release_signals()
    ctx.out.note("dwf dev: stopped the worker and the Temporal dev server")
    return ExitCode.OK


def _announce(ctx: Context, address: str, ui: str | None, settings: WorkerSettings) -> None:
    facts = {
        "address": address,
        "namespace": settings.temporal_namespace,
        "ui": ui,
        "task_queue": settings.task_queue,
        "database_url": settings.database_url_redacted,
        "app": list(settings.app),
    }
    out = ctx.out
    if out.json_mode:
        out.line(json.dumps(facts))
        return
    out.line(f"dwf dev: Temporal dev server at {address} (namespace {settings.temporal_namespace})")
    if ui:
        out.line(f"dwf dev: Temporal Web UI at {ui}")
    out.line(f"dwf dev: worker for {', '.join(settings.app)} on task queue {settings.task_queue}")
    out.line(f"dwf dev: SQL mirror at {settings.database_url_redacted}")
    out.line("dwf dev: from another terminal:")
    out.line(
        f"  export DWF_TEMPORAL_ADDRESS={address} DWF_TASK_QUEUE={settings.task_queue} "
        f"DWF_DATABASE_URL={settings.database_url_redacted}"
    )
    out.line("dwf dev: press Ctrl-C to stop")
