"""Checks of the connection settings the worker and ``dwf`` share (one rule for each).

``DWF_TEMPORAL_ADDRESS``, ``DWF_DATABASE_URL``, ``DWF_APP``, the TLS files and the like mean the
same to ``dwf tasks list`` as to the worker: the worker's settings (``worker.WorkerSettings``)
and the command line's global options (``sdk.cli``) both call these. Each takes the text given
and returns the value, normalised, or raises ``ValueError`` with the sentence the user sees after
the name of the flag or variable it came from.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

__all__ = ["address", "boolean", "database_url", "modules", "nonempty", "readable_file"]

_MODULE_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def address(raw: str) -> str:
    """``host:port`` of the Temporal frontend."""
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected host:port (e.g. localhost:7233), got {raw!r}")
    return raw


def nonempty(raw: str) -> str:
    """Any text but the empty one."""
    if not raw:
        raise ValueError("must not be empty")
    return raw


def boolean(raw: str) -> bool:
    """``true/false``, ``1/0``, ``yes/no`` or ``on/off``, any case."""
    if raw.lower() in (*_TRUE, *_FALSE):
        return raw.lower() in _TRUE
    raise ValueError(f"expected true or false, got {raw!r}")


def database_url(raw: str) -> str:
    """The mirror's URL, which must name its async driver (the mirror's rule, ``async_url``)."""
    from sdk.mirror import async_url

    try:
        given, wanted = make_url(raw), async_url(raw)
    except ArgumentError:
        raise ValueError(
            f"not a database URL: {raw!r} "
            "(e.g. sqlite+aiosqlite:///dwf.db or postgresql+asyncpg://user:pw@host:5432/dwf)"
        ) from None
    if given.drivername != wanted.drivername:
        raise ValueError(
            f"the mirror needs the async driver: write {wanted.drivername}://... "
            f"instead of {given.drivername}://..."
        )
    return raw


def modules(raw: str) -> tuple[str, ...]:
    """Comma-separated module paths (``examples.expense_approval,billing.flows``)."""
    names = tuple(part.strip() for part in raw.split(",") if part.strip())
    for name in names:
        if not _MODULE_RE.match(name):
            raise ValueError(f"{name!r} is not a module path (e.g. examples.expense_approval)")
    if not names:
        raise ValueError("name at least one module")
    return names


def readable_file(raw: str | Path) -> Path:
    """A file the process can read (a TLS certificate, key or CA)."""
    path = Path(raw).expanduser()
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    if not os.access(path, os.R_OK):
        raise ValueError(f"file is not readable: {path}")
    return path
