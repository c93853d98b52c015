"""What commands print: Rich tables and label/value blocks for people, JSON for scripts, and a
progress bar on stderr for long operations.

On a terminal, tables fit its width: long cells wrap, but an id a user must paste
(``Column(key=True)``) is never cut or wrapped. Elsewhere (a pipe, a file) a row is one line,
as wide as it needs, with the long free-text cells cut at their ``width`` with ``…``.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TextIO

import pydantic_core

__all__ = ["Column", "Output", "Progress", "attr", "format_value", "jsonable", "render_table"]

_UNBOUNDED = 100_000
"""The width of a table that is not printed to a terminal: never wrapped."""


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
    """A table column: its header, how to get its value from a row, and how it may shrink.

    Attributes:
        width: Off a terminal, longer cells are cut to this width with ``…``.
        key: An id a user pastes into another command: shown whole, never wrapped.
    """

    header: str
    get: Callable[[Any], Any]
    width: int | None = None
    key: bool = False


def attr(name: str) -> Callable[[Any], Any]:
    """A getter for an attribute (of a row model) or a key (of a mapping)."""

    def get(row: Any) -> Any:
        return row.get(name) if isinstance(row, Mapping) else getattr(row, name, None)

    return get


def render_table(
    rows: Sequence[Any], columns: Sequence[Column], *, width: int | None = None, header: bool = True
) -> str:
    """``rows`` as a table two spaces between columns, no trailing spaces.

    Args:
        width: The terminal's width, to fit in (keys whole); None: one line per row.
        header: Print the column headers.
    """
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    cells = [[format_value(c.get(row)) for c in columns] for row in rows]
    natural = [max(len(c.header), *(len(line[i]) for line in cells)) for i, c in enumerate(columns)]
    # On a terminal: the keys whole, and every other column at least as wide as its header or
    # ten characters (less when its cells are shorter), even when that is wider than the terminal.
    least = [n if c.key else min(n, max(len(c.header), 10)) for n, c in zip(natural, columns, strict=True)]
    table = Table(box=None, show_header=header, pad_edge=False, padding=(0, 1), header_style="bold")
    for column, floor in zip(columns, least, strict=True):
        if column.key:
            table.add_column(column.header, no_wrap=True, min_width=floor)
        elif width is not None:
            table.add_column(column.header, overflow="fold", min_width=floor)
        else:
            table.add_column(column.header, no_wrap=True, overflow="ellipsis", max_width=column.width)
    for line in cells:
        table.add_row(*(Text(text) for text in line))
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=_UNBOUNDED if width is None else max(width, sum(least) + 2 * len(columns)),
        force_terminal=False,
        no_color=True,
        highlight=False,
    )
    console.print(table)
    return "\n".join(line.rstrip() for line in buffer.getvalue().rstrip("\n").splitlines())


class Output:
    """Where a command writes: ``stdout`` for results, ``stderr`` for notes and progress.

    Args:
        json_mode: Print JSON instead of text (``--json``).
    """

    def __init__(self, json_mode: bool = False, stdout: TextIO | None = None, stderr: TextIO | None = None):
        self.json_mode = json_mode
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr

    def _width(self) -> int | None:
        """The terminal's width when results go to one, else None (no wrapping)."""
        if not getattr(self.stdout, "isatty", lambda: False)():
            return None
        from rich.console import Console

        return Console(file=self.stdout).width

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
        self.line(render_table(rows, columns, width=self._width()) if rows else empty)

    def fields(self, pairs: Sequence[tuple[str, Any]]) -> None:
        """A block of aligned ``label  value`` lines (long values wrap on a terminal)."""
        columns = (Column("", lambda p: p[0], key=True), Column("", lambda p: p[1]))
        self.line(render_table(pairs, columns, width=self._width(), header=False))

    def page(self, page: Any, columns: Sequence[Column], *, noun: str) -> None:
        """A page of query results (a JSON list, or a table) and, on stderr, a note on what follows."""
        if self.json_mode:
            self.json(page.items)
        else:
            self.table(page.items, columns, empty=f"no {noun}")
        if page.has_more:
            shown_to = page.offset + len(page.items)
            total = page.total if page.total_exact else f"at least {page.total}"
            self.note(f"{page.offset + 1}-{shown_to} of {total} {noun}; next page: --offset {shown_to}")


class Progress:
    """Progress on ``stream``: a Rich progress bar on a terminal, one line per step otherwise
    (so logs of a non-interactive run stay readable).

    Use it as the ``progress(n, workflow_id)`` callback of ``sdk.mirror.audit`` and
    ``rebuild``; call :meth:`close` at the end.
    """

    def __init__(self, verb: str, total: int | None = None, stream: TextIO | None = None) -> None:
        self.verb = verb
        self.total = total
        self.stream = stream or sys.stderr
        self.count = 0
        self._bar: Any = None
        if getattr(self.stream, "isatty", lambda: False)():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[current]}"),
                console=Console(file=self.stream),
                auto_refresh=False,
            )
            self._task = self._bar.add_task(verb, total=total, current="")
            self._bar.start()

    def __call__(self, count: int, workflow_id: str) -> None:
        self.count = count
        if self._bar is not None:
            self._bar.update(self._task, completed=count, current=workflow_id, refresh=True)
            return
        of = f"/{self.total}" if self.total is not None else ""
        self.stream.write(f"{self.verb} {count}{of}: {workflow_id}\n")
        self.stream.flush()

    def close(self) -> None:
        """Stop the bar (it stays on the terminal with its final count)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
