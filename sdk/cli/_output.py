"""What commands print: aligned tables and key/value blocks for people, JSON for scripts,
and a progress counter on stderr for long operations."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TextIO

import pydantic_core

__all__ = ["Column", "Output", "Progress", "format_value", "jsonable", "render_table"]


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types (pydantic models, datetimes, UUIDs and enums included)."""
    return pydantic_core.to_jsonable_python(value, fallback=str)


def format_value(value: Any) -> str:
    """One value for a table cell: ``-`` for nothing, UTC times, compact JSON for structures."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    if isinstance(value, dict | list):
        return json.dumps(jsonable(value), separators=(",", ":"), sort_keys=True)
    return " ".join(str(value).split())


@dataclass(frozen=True)
class Column:
    """A table column: its header, how to get its value from a row, and an optional width cap."""

    header: str
    get: Callable[[Any], Any]
    width: int | None = None


def _cell(column: Column, row: Any) -> str:
    text = format_value(column.get(row))
    if column.width is not None and len(text) > column.width:
        text = text[: column.width - 1] + "…"
    return text


def render_table(rows: Sequence[Any], columns: Sequence[Column]) -> str:
    """An aligned plain-text table: a header line, then one line per row (no trailing spaces)."""
    cells = [[c.header for c in columns], *([_cell(c, row) for c in columns] for row in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join(
        "  ".join(text.ljust(w) for text, w in zip(line, widths, strict=True)).rstrip() for line in cells
    )


def attr(name: str) -> Callable[[Any], Any]:
    """A getter for an attribute (of a row model) or a key (of a mapping)."""

    def get(row: Any) -> Any:
        return row.get(name) if isinstance(row, Mapping) else getattr(row, name, None)

    return get


class Output:
    """Where a command writes: ``stdout`` for results, ``stderr`` for notes and progress.

    Args:
        json_mode: Print JSON instead of text (``--json``).
    """

    def __init__(self, json_mode: bool = False, stdout: TextIO | None = None, stderr: TextIO | None = None):
        self.json_mode = json_mode
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr

    def line(self, text: str = "") -> None:
        """A line of the result (stdout)."""
        print(text, file=self.stdout, flush=True)

    def note(self, text: str) -> None:
        """A remark for the person at the terminal (stderr, so it never mixes with results)."""
        print(text, file=self.stderr, flush=True)

    def json(self, value: Any) -> None:
        """``value`` as indented JSON on stdout."""
        print(json.dumps(jsonable(value), indent=2), file=self.stdout, flush=True)

    def compact(self, value: Any) -> str:
        """``value`` as one line of JSON."""
        return json.dumps(jsonable(value), separators=(", ", ": "))

    def table(self, rows: Sequence[Any], columns: Sequence[Column], *, empty: str) -> None:
        """``rows`` as a table, or the ``empty`` sentence when there are none."""
        self.line(render_table(rows, columns) if rows else empty)

    def fields(self, pairs: Sequence[tuple[str, Any]]) -> None:
        """A block of aligned ``label  value`` lines."""
        width = max((len(label) for label, _ in pairs), default=0)
        for label, value in pairs:
            self.line(f"{label.ljust(width)}  {format_value(value)}".rstrip())

    def page(self, page: Any, columns: Sequence[Column], *, noun: str) -> None:
        """A page of query results (a JSON list, or a table) and, on stderr, a note on what follows."""
        if self.json_mode:
            self.json(page.items)
        else:
            self.table(page.items, columns, empty=f"no {noun}")
        if page.has_more:
            shown_to = page.offset + len(page.items)
            self.note(f"{page.offset + 1}-{shown_to} of {page.total} {noun}; next page: --offset {shown_to}")


class Progress:
    """A counter on ``stream`` that rewrites itself (``\\r``) on a terminal, one line per step
    otherwise (so logs of a non-interactive run stay readable).

    Use it as the ``progress(n, workflow_id)`` callback of ``sdk.mirror.audit`` and
    ``rebuild``; call :meth:`close` at the end.
    """

    def __init__(self, verb: str, total: int | None = None, stream: TextIO | None = None) -> None:
        self.verb = verb
        self.total = total
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.count = 0
        self._width = 0

    def __call__(self, count: int, workflow_id: str) -> None:
        self.count = count
        of = f"/{self.total}" if self.total is not None else ""
        text = f"{self.verb} {count}{of}: {workflow_id}"
        if self.tty:
            # Pad over the longer text of the previous step instead of relying on escape codes.
            self.stream.write("\r" + text.ljust(self._width))
            self._width = max(self._width, len(text))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the counter's line on a terminal."""
        if self.tty and self.count:
            self.stream.write("\n")
            self.stream.flush()
