"""What the mirror's databases can store faithfully: one check for the client and the workflow.

Everything a command or a start input carries ends up in the SQL mirror (JSON columns, text
columns). PostgreSQL cannot store a NUL character in text or JSONB, nor an unpaired UTF-16
surrogate; JSON has no NaN or infinity (SQLite's JSON would turn them into null); JSONB keeps
numbers as decimals, so a float beyond 2**53 comes back as a different integer, and an integer
beyond 64 bits does not fit the driver's types. Refusing these values before anything is sent
(in the client) and again on receipt (in workflow code, for raw Temporal clients) gives the same
answer on SQLite and PostgreSQL. Pure functions, sandbox safe.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["MAX_PAYLOAD_BYTES", "payload_size", "unstorable"]

MAX_PAYLOAD_BYTES = 256 * 1024
"""The largest command or start input (JSON bytes). Temporal refuses payloads over 2 MB, and a
command's data travels again inside the events it causes, so the limit leaves room for that."""

_MAX_INT = 2**63 - 1
_MAX_EXACT_FLOAT = 2.0**53
_MAX_DEPTH = 64


def unstorable(value: Any, field: str = "") -> list[dict[str, Any]]:
    """One ``{"field", "message", "type": "unstorable"}`` entry per value no mirror can store.

    Dict keys are checked like strings. An empty list means ``value`` is storable.
    """
    errors: list[dict[str, Any]] = []
    _walk(value, field, errors, 0)
    return errors


def _error(errors: list[dict[str, Any]], field: str, message: str) -> None:
    errors.append({"field": field or "__root__", "message": message, "type": "unstorable"})


def _walk(value: Any, field: str, errors: list[dict[str, Any]], depth: int) -> None:
    if depth > _MAX_DEPTH:
        _error(errors, field, f"nested deeper than {_MAX_DEPTH} levels")
    elif isinstance(value, str):
        _check_text(value, field, errors)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not -_MAX_INT - 1 <= value <= _MAX_INT:
            _error(errors, field, "integer outside the 64-bit range")
    elif isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            _error(errors, field, "NaN and infinity cannot be stored")
        elif abs(value) > _MAX_EXACT_FLOAT:
            _error(errors, field, "float larger than 2**53 in magnitude cannot be stored exactly")
    elif isinstance(value, dict):
        for key, item in value.items():
            name = f"{field}.{key}" if field else str(key)
            if isinstance(key, str):
                _check_text(key, name, errors)
            _walk(item, name, errors, depth + 1)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _walk(item, f"{field}.{index}" if field else str(index), errors, depth + 1)


def _check_text(text: str, field: str, errors: list[dict[str, Any]]) -> None:
    if "\x00" in text:
        _error(errors, field, "text contains a NUL character")
    else:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            _error(errors, field, "text contains an unpaired surrogate")


def payload_size(value: Any) -> int:
    """The size in bytes of ``value`` as compact JSON (what goes over the wire, roughly)."""
    try:
        return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode())
    except (ValueError, UnicodeEncodeError):
        return len(json.dumps(value, separators=(",", ":"), default=str))
