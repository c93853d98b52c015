"""What every command's handler receives: its arguments, where to connect, where to print."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ._output import Output
from ._target import Target

__all__ = ["Context", "Handler"]


@dataclass(frozen=True)
class Context:
    """One invocation of a command.

    Attributes:
        args: The command's arguments by name (as ``sdk.cli.parse`` returns them).
    """

    args: Any
    target: Target
    out: Output


Handler = Callable[[Context], Awaitable[int]]
"""A command's work: runs, prints, and returns its exit code (or raises; see ``_exit.classify``)."""
