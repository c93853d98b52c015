"""What every command receives: its parsed arguments, where to connect, where to print."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ._output import Output
from ._target import Target

__all__ = ["Command", "Context"]


@dataclass(frozen=True)
class Context:
    """One invocation of a command."""

    args: argparse.Namespace
    target: Target
    out: Output


Command = Callable[[Context], Awaitable[int]]
"""A command: runs, prints, and returns its exit code (or raises; see ``_exit.classify``)."""
