"""``dwf worker`` and ``dwf dev``: the commands that run until SIGTERM or Ctrl-C, and the only
ones that import the worker.

Both delegate to the worker process (``worker.run_worker``), which stops polling on
SIGTERM/SIGINT, lets in-flight activities finish, closes the mirror and then pauses a moment so
the interpreter does not crash at exit (docs/temporal-facts.md). ``dwf worker`` takes
the worker's own flags, declared once with its settings, and hands them over as they are.
``dev`` also starts the official Temporal dev server first, and stops it, by its PID, after the
worker is done; and it serves the web inbox beside them (``sdk.cli._dev_inbox``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
from typing import Any

from ._context import Context
from ._dev_inbox import DEFAULT_DEV_USERS, DevInbox
from ._exit import CommandError, ExitCode, UsageError
from ._serve import load_dev_users

__all__ = [
    "DEFAULT_DEV_APP",
    "DEFAULT_DEV_DB_FILE",
    "DEFAULT_DEV_PORT",
    "check_port_free",
    "dev",
    "worker",
    "worker_argv",
    "worker_settings",
]

DEFAULT_DEV_APP = ("examples.expense_approval",)
DEFAULT_DEV_PORT = 7233
"""Temporal's usual port, so the other commands find the dev server without ``--address``."""
DEFAULT_DEV_DB_FILE = "dwf-temporal.db"
"""Temporal's state survives a restart, like the mirror's default ``dwf.db`` beside it (an
ephemeral server with a lasting mirror would leave the mirror describing instances that no
longer exist)."""

_WORKER_FLAGS = {
    "address": "--temporal-address",
    "namespace": "--namespace",
    "task_queue": "--task-queue",
    "database_url": "--database-url",
    "app": "--app",
}
"""The worker's flag for each global option."""


def worker_argv(args: Any) -> list[str]:
    """The worker's command line: the global options given, as the worker's flags, then
    ``dwf worker``'s own arguments (so a flag after ``worker`` wins over a global one)."""
    given = [(flag, args.flags[field]) for field, flag in _WORKER_FLAGS.items() if args.flags.get(field)]
    return [*(part for pair in given for part in pair), *args.worker_args]


def _worker_parser() -> argparse.ArgumentParser:
    from worker import add_worker_arguments

    parser = argparse.ArgumentParser(
        prog="dwf worker",
        add_help=False,
        exit_on_error=False,
        description="Run the long-lived worker until SIGTERM or SIGINT (same as python -m worker). "
        "The global options (--address, --debug, ...) apply too.",
    )
    return add_worker_arguments(parser)


def worker_settings(args: Any) -> Any:
    """``dwf worker``'s settings (``worker.WorkerSettings``): its own flags, then the global
    options, then the ``DWF_*`` variables.

    Raises:
        UsageError: An unknown flag, or one without its value.
        ConfigurationError: A setting is missing or malformed (exit 2).
    """
    return _load_settings(worker_argv(args))


def _load_settings(argv: list[str]) -> Any:
    from worker import WorkerSettings

    try:
        known, unknown = _worker_parser().parse_known_args(argv)
    except argparse.ArgumentError as exc:
        raise UsageError(f"dwf worker: {exc} (see 'dwf worker --help')") from None
    if unknown:
        raise UsageError(f"dwf worker: no such option: {' '.join(unknown)} (see 'dwf worker --help')")
    return WorkerSettings.load(known)


async def worker(ctx: Context) -> int:
    """Run the long-lived worker until SIGTERM or SIGINT."""
    from worker import configure_logging, run_worker

    if {"-h", "--help"} & set(ctx.args.worker_args):
        ctx.out.line(_worker_parser().format_help().rstrip())
        return ExitCode.OK
    settings = worker_settings(ctx.args)
    configure_logging(settings.log_level, settings.log_format)
    await run_worker(settings)
    return ExitCode.OK


def check_port_free(port: int, flag: str) -> None:
    """Fail when something listens on ``port`` (a port whose last connections are in TIME_WAIT,
    as after a restart within a minute, is free: the server can bind it, and so can the probe).
    """
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
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
    from sdk.runtime import dev_signing_key
    from worker import configure_logging, run_worker

    a, target = ctx.args, ctx.target
    port = a.port or DEFAULT_DEV_PORT
    check_port_free(port, "--port")
    ui_port = a.ui_port or port + 1000
    if a.ui:
        check_port_free(ui_port, "--ui-port")
    if a.inbox_port:
        try:
            check_port_free(a.inbox_port, "--inbox-port")
        except CommandError:
            raise CommandError(
                f"port {a.inbox_port} is in use (dwf serve, another dwf dev?): choose another with "
                "--inbox-port, or turn the web inbox off with --inbox-port 0"
            ) from None
    users = load_dev_users(a.dev_users) if a.dev_users else DEFAULT_DEV_USERS
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
            # The worker runs in this process: a development key (unless keys are configured)
            # lets the commands of other terminals, which export it, be verified.
            dev_key = dev_signing_key()
            settings = _load_settings(
                [
                    *("--temporal-address", server.target, "--namespace", target.namespace),
                    *("--task-queue", target.task_queue, "--database-url", target.database_url),
                    *("--app", ",".join(app), "--http-port", str(a.http_port)),
                ]
            )
            inbox = serving = None
            if a.inbox_port:
                inbox = DevInbox(
                    address=server.target,
                    namespace=target.namespace,
                    task_queue=target.task_queue,
                    database_url=target.database_url,
                    port=a.inbox_port,
                    users=dict(users),
                )
                serving = asyncio.create_task(inbox.serve())
                try:
                    await inbox.wait_started(serving)
                except Exception as exc:
                    raise CommandError(f"the web inbox did not start: {exc}") from exc
            ui = f"http://127.0.0.1:{ui_port}" if a.ui else None
            _announce(ctx, server.target, ui, settings, dev_key, inbox=inbox)
            try:
                if not stop.is_set():
                    configure_logging(settings.log_level, settings.log_format)
                    # The worker installs its own SIGINT/SIGTERM handlers (setting the same event)
                    # and removes them when it is done.
                    await run_worker(settings, stop=stop)
            finally:
                if inbox is not None and serving is not None:
                    inbox.stop()
                    await serving
        finally:
            _trap_signals(stop)  # a second Ctrl-C must not orphan the server
            await asyncio.to_thread(server.stop)
    finally:
        _release_signals()
    inbox_part = ", the web inbox" if a.inbox_port else ""
    ctx.out.note(f"dwf dev: stopped the worker{inbox_part} and the Temporal dev server")
    return ExitCode.OK


def _announce(
    ctx: Context,
    address: str,
    ui: str | None,
    settings: Any,
    dev_key: str | None = None,
    *,
    inbox: DevInbox | None = None,
) -> None:
    namespace, queue, database = (
        settings.temporal_namespace,
        settings.task_queue,
        settings.database_url_redacted,
    )
    environment = {
        "DWF_TEMPORAL_ADDRESS": address,
        "DWF_TEMPORAL_NAMESPACE": namespace,
        "DWF_TASK_QUEUE": queue,
        "DWF_DATABASE_URL": database,
        **({"DWF_SIGNING_KEY": dev_key} if dev_key else {}),  # signs the commands acting as users
        # The official temporal CLI's own variables.
        "TEMPORAL_ADDRESS": address,
        "TEMPORAL_NAMESPACE": namespace,
    }
    facts = {
        "address": address,
        "namespace": namespace,
        "ui": ui,
        "inbox": inbox.url if inbox else None,
        "inbox_users": sorted(inbox.users) if inbox else [],
        "task_queue": queue,
        "database_url": database,
        "app": list(settings.app),
        "environment": environment,
    }
    out = ctx.out
    if out.json_mode:
        out.line(json.dumps(facts))
        return
    out.line(f"dwf dev: Temporal dev server at {address} (namespace {namespace})")
    if ui:
        out.line(f"dwf dev: Temporal Web UI at {ui}")
    out.line(f"dwf dev: worker for {', '.join(settings.app)} on task queue {queue}")
    out.line(f"dwf dev: SQL mirror at {database}")
    if inbox:
        out.line(f"dwf dev: web inbox at {inbox.url} (sign in as {', '.join(sorted(inbox.users))})")
    out.line("dwf dev: from another terminal, for dwf and for the temporal CLI:")
    dwf = [f"{k}={v}" for k, v in environment.items() if k.startswith("DWF_")]
    temporal = [f"{k}={v}" for k, v in environment.items() if k.startswith("TEMPORAL_")]
    out.line(f"  export {' '.join(dwf)}")
    out.line(f"  export {' '.join(temporal)}")
    out.line("dwf dev: press Ctrl-C to stop")
