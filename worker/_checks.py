"""Checks of setting values that pydantic's types do not make.

Each takes the value (text, or what pydantic made of it) and returns it, normalised, or raises
ValueError with the sentence the user sees after the flag or variable's name.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from typing import Any

from pydantic import BeforeValidator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

__all__ = ["address", "database_url", "modules", "one_of", "readable_file", "tracing"]

_MODULE_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_ASYNC_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}


def address(raw: str) -> str:
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected host:port (e.g. localhost:7233), got {raw!r}")
    return raw


def database_url(raw: str) -> str:
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ValueError(
            f"not a database URL: {raw!r} "
            "(e.g. sqlite+aiosqlite:///dwf.db or postgresql+asyncpg://user:pw@host:5432/dwf)"
        ) from None
    backend, driver = url.get_backend_name(), url.get_driver_name()
    wanted = _ASYNC_DRIVERS.get(backend)
    if wanted is None:
        raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")
    if driver != wanted:
        raise ValueError(
            f"the mirror needs the async driver: write {backend}+{wanted}://... "
            f"instead of {url.drivername}://..."
        )
    return raw


def modules(raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    names = tuple(part.strip() for part in raw.split(",") if part.strip())
    for name in names:
        if not _MODULE_RE.match(name):
            raise ValueError(f"{name!r} is not a module path (e.g. examples.expense_approval)")
    if not names:
        raise ValueError("name at least one module")
    return names


def readable_file(path: Path | None) -> Path | None:
    if path is None:
        return None
    path = path.expanduser()
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    if not os.access(path, os.R_OK):
        raise ValueError(f"file is not readable: {path}")
    return path


def tracing(enabled: bool) -> bool:
    if enabled and importlib.util.find_spec("opentelemetry") is None:
        raise ValueError("tracing needs OpenTelemetry: pip install 'temporalio[opentelemetry]'")
    return enabled


def one_of(*choices: str) -> BeforeValidator:
    """Accept any case of ``choices`` and name them all when the value is none of them."""

    def check(raw: Any) -> Any:
        if isinstance(raw, str):
            for choice in choices:
                if raw.strip().lower() == choice.lower():
                    return choice
            named = " or ".join(choices) if len(choices) == 2 else "one of " + ", ".join(choices)
            raise ValueError(f"expected {named}, got {raw!r}")
        return raw

    return BeforeValidator(check)


def webhook_url(raw: str | None) -> str | None:
    if raw is not None and not raw.startswith(("http://", "https://")):
        raise ValueError(f"expected an http:// or https:// URL, got {raw!r}")
    return raw


def addresses(raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    found = tuple(part.strip() for part in raw.split(",") if part.strip())
    for address in found:
        if "@" not in address:
            raise ValueError(f"{address!r} is not an e-mail address")
    return found
