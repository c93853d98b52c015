"""``python -m worker``: run the durable-workflows worker until SIGTERM or SIGINT.

Exit codes: 0 after a clean shutdown, 2 for bad configuration (one line on stderr naming the
flag or variable, ``python -m worker: error: ...``, as argparse words its own usage errors), 1
for any other error (one line; the traceback too with ``--debug``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import traceback
from collections.abc import Sequence

from ._logging import configure_logging
from ._process import run_worker
from ._settings import ConfigurationError, WorkerSettings, add_worker_arguments

__all__ = ["EXIT_CONFIG", "EXIT_ERROR", "EXIT_OK", "build_parser", "main"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CONFIG = 2
PROG = "python -m worker"


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m worker``."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run the durable-workflows worker: poll a Temporal task queue, write the SQL mirror, "
        "serve /healthz, /readyz and /metrics. Stops cleanly on SIGTERM or SIGINT. Settings come "
        "from the flags below, the DWF_* environment variables, or a .env file (in that order).",
    )
    parser.add_argument("--debug", action="store_true", help="print the traceback of an unexpected error")
    add_worker_arguments(parser)
    return parser


def _error(message: str) -> None:
    print(f"{PROG}: error: {' '.join(message.split())}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags and environment, run the worker, and return the exit code."""
    args = build_parser().parse_args(argv)
    try:
        settings = WorkerSettings.load(args)
    except ConfigurationError as exc:
        _error(str(exc))
        return EXIT_CONFIG
    configure_logging(settings.log_level, settings.log_format)
    try:
        asyncio.run(run_worker(settings))
    except ConfigurationError as exc:
        _error(str(exc))
        return EXIT_CONFIG
    except KeyboardInterrupt:  # a SIGINT before the handlers were installed
        return EXIT_OK
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        _error(f"{type(exc).__name__}: {exc}")
        return EXIT_ERROR
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
