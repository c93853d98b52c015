"""Checks of setting values that pydantic's types do not make.

Each takes the value (text, or what pydantic made of it) and returns it, normalised, or raises
ValueError with the sentence the user sees after the flag or variable's name. The connection
settings' checks are ``sdk.connection``'s, which ``dwf``'s global options use too.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from pydantic import BeforeValidator

from sdk import connection

__all__ = ["address", "database_url", "modules", "one_of", "readable_file", "tracing"]


def address(raw: str) -> str:
    return connection.address(raw)


def database_url(raw: str) -> str:
    return connection.database_url(raw)


def modules(raw: Any) -> Any:
    return connection.modules(raw) if isinstance(raw, str) else raw


def readable_file(path: Path | None) -> Path | None:
    return None if path is None else connection.readable_file(path)


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
