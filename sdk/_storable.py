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
import re
from typing import Any

__all__ = ["MAX_PAYLOAD_BYTES", "REPLACEMENT", "payload_size", "storable_copy", "unstorable"]

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


REPLACEMENT = "\ufffd"
"""What a character no database can store (NUL, an unpaired surrogate) becomes in the mirror."""

_SURROGATES = re.compile("[\ud800-\udfff]")


def storable_copy(value: Any, field: str = "") -> tuple[Any, list[str]]:
    """``value`` as every mirror database stores it alike, and the fields that had to change.

    For what workflows produce themselves (machine-step inputs and outputs, titles, errors),
    which nothing checked before: a character no database can store becomes
    :data:`REPLACEMENT` (U+FFFD), and a number JSON or the drivers cannot carry exactly (NaN,
    infinity, a float beyond 2**53, an integer beyond 64 bits) becomes its text (``"NaN"``,
    ``"Infinity"``, ``"1e+308"``). The same rules as :func:`unstorable`; an unchanged value
    is returned as is.
    """
    changed: list[str] = []
    return _copy(value, field, changed, 0), changed


def _copy(value: Any, field: str, changed: list[str], depth: int) -> Any:
    if isinstance(value, str):
        return _text(value, field, changed)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if -_MAX_INT - 1 <= value <= _MAX_INT:
            return value
        changed.append(field or "__root__")
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            text = "NaN"
        elif math.isinf(value):
            text = "Infinity" if value > 0 else "-Infinity"
        elif abs(value) > _MAX_EXACT_FLOAT:
            text = repr(value)
        else:
            return value
        changed.append(field or "__root__")
        return text
    if depth > _MAX_DEPTH:
        return value  # the drivers' JSON encoders refuse it; the writer reports the batch
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            name = f"{field}.{key}" if field else str(key)
            new_key = _text(key, name, changed) if isinstance(key, str) else key
            out[new_key] = _copy(item, name, changed, depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        items = [
            _copy(item, f"{field}.{i}" if field else str(i), changed, depth + 1)
            for i, item in enumerate(value)
        ]
        return items if isinstance(value, list) else tuple(items)
    return value


def _text(text: str, field: str, changed: list[str]) -> str:
    fixed = _SURROGATES.sub(REPLACEMENT, text.replace("\x00", REPLACEMENT))
    if fixed == text:
        return text  # the very object (an enum member stays one)
    changed.append(field or "__root__")
    return fixed


def payload_size(value: Any) -> int:
    """The size in bytes of ``value`` as compact JSON (what goes over the wire, roughly)."""
    try:
        return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode())
    except (ValueError, UnicodeEncodeError):
        return len(json.dumps(value, separators=(",", ":"), default=str))
