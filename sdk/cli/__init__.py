"""``dwf``: the durable-workflows command line.

::

    dwf [--address HOST:PORT] [--namespace NS] [--task-queue Q] [--database-url URL]
        [--app MODULE] [--json] [--debug] COMMAND ...

Commands: ``dev``, ``worker``, ``start``, ``instances list|show``,
``tasks list|show|claim|release|complete|reassign|comment``, ``db upgrade|current``,
``mirror audit|rebuild``, ``graph``. Global options also come from the worker's ``DWF_*``
variables. Results go to stdout (tables, or JSON with ``--json``); errors are one line on
stderr (``dwf: error: ...``; the traceback too with ``--debug``), and the exit code says what
happened (:class:`ExitCode`). See docs/cli.md.
"""

from __future__ import annotations

import asyncio
import sys
import traceback
from collections.abc import Sequence

from ._context import Context
from ._exit import ExitCode, classify
from ._output import Output
from ._parser import build_parser
from ._target import Target, import_app

__all__ = ["ExitCode", "build_parser", "main"]

_IMPORTS_APP = frozenset({"start", "instances", "tasks", "mirror", "deploy-check"})
"""Commands that import ``--app`` first (``worker`` and ``dev`` import it in the worker)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``dwf`` with ``argv`` (default ``sys.argv[1:]``) and return the exit code.

    Usage errors exit through argparse (``SystemExit(2)``).
    """
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras and args.command != "graph":
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    debug = bool(getattr(args, "debug", False))
    out = Output(json_mode=bool(getattr(args, "json", False)))
    try:
        target = Target.resolve(args)
        if args.command in _IMPORTS_APP and target.app:
            import_app(target.app)
        return int(asyncio.run(args.handler(Context(args, target, out))))
    except KeyboardInterrupt:
        out.note("dwf: interrupted")
        return ExitCode.INTERRUPTED
    except Exception as exc:
        code, message, details = classify(exc)
        if debug:
            traceback.print_exc()
        print(f"dwf: error: {message}", file=sys.stderr, flush=True)
        for detail in details:
            print(f"  {detail}", file=sys.stderr, flush=True)
        return code
