"""``dwf``: the durable-workflows command line, on Typer and Rich.

::

    dwf [--address HOST:PORT] [--namespace NS] [--task-queue Q] [--database-url URL]
        [--app MODULE] [--json] [--debug] COMMAND ...

Commands: ``dev``, ``worker``, ``serve``, ``start``, ``instances list|show``,
``tasks list|show|claim|release|complete|reassign|comment``, ``db upgrade|current``,
``mirror audit|rebuild``, ``graph``. Global options also come from the worker's ``DWF_*``
variables. Results go to stdout (tables, or JSON with ``--json``); errors are one line on
stderr (``dwf: error: ...``; the traceback too with ``--debug``), and the exit code says what
happened (:class:`ExitCode`). See docs/cli.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

import typer

from ._context import Context
from ._exit import ExitCode, classify, one_line
from ._output import Output
from ._target import Target, import_app

__all__ = ["ExitCode", "main", "parse"]

_IMPORTS_APP = ("start", "instances", "tasks", "mirror", "deploy-check", "serve", "graph")
"""Commands that import ``--app`` first (``worker`` and ``dev`` import it in the worker)."""


def parse(argv: Sequence[str]) -> Any:
    """The invocation ``argv`` asks for: ``.handler``, ``.command``, ``.flags`` (the global
    options given), ``.json``, ``.debug`` and the command's own arguments by name; or the exit
    code when Typer answered by itself (``--help``).

    Raises:
        typer.TyperException: A usage error found by Typer (its ``exit_code`` is 2).
        CommandError: A usage error found by a command's own checks.
    """
    return _command().main(list(argv), prog_name="dwf", standalone_mode=False)


@functools.cache
def _command() -> Any:
    """The click command Typer builds from the app (built once: it takes ~30 ms)."""
    from ._app import app

    return typer.main.get_command(app)


def _usage_line(exc: typer.TyperException) -> str:
    context = getattr(exc, "ctx", None)
    where = context.command_path if context is not None else "dwf"
    return f"{one_line(exc.format_message())} (see '{where} --help')"


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``dwf`` with ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    out = Output(json_mode="--json" in argv)
    try:
        invocation = parse(argv)
        if isinstance(invocation, int):
            return invocation
        debug, out = invocation.debug, Output(json_mode=invocation.json)
        target = Target.resolve(invocation.flags)
        if invocation.command.split()[0] in _IMPORTS_APP and target.app:
            import_app(target.app)
        return int(asyncio.run(invocation.handler(Context(invocation, target, out))))
    except KeyboardInterrupt:
        out.note("dwf: interrupted")
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``dwf tasks list | head -1``): stop quietly, with the code of a
        # program that SIGPIPE ended, and keep the interpreter from failing to flush at exit.
        with contextlib.suppress(OSError, ValueError):
            stdout, devnull = sys.stdout.fileno(), os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stdout)
            os.close(devnull)
        return ExitCode.BROKEN_PIPE
    except typer.TyperException as exc:
        print(f"dwf: error: {_usage_line(exc)}", file=sys.stderr, flush=True)
        return exc.exit_code
    except Exception as exc:
        code, message, details = classify(exc)
        if debug:
            traceback.print_exc()
        print(f"dwf: error: {message}", file=sys.stderr, flush=True)
        for detail in details:
            print(f"  {detail}", file=sys.stderr, flush=True)
        return code
