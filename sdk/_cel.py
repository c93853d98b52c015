"""CEL expressions over an instance's data: parsed and checked at load, evaluated in workflows.

Conditions, correlation keys, timer times and step inputs are written in CEL (Common
Expression Language, through the ``cel-python`` package): a small, side-effect-free language
with no I/O, no clock and no randomness, so evaluating one in workflow code is deterministic.
Never Python ``eval``. The only variable is ``data``, the instance's data.

Checks at load: the expression parses; every field path it reads under ``data`` exists in the
data's JSON Schema (where the schema says which properties there are); evaluated on a sample
of the schema's types, it raises no type error (``data.amount > "x"``), and a condition gives
a boolean.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import celpy
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError
from lark import Token, Tree

from ._graph_errors import ConditionSyntaxError, ConditionTypeError, UnknownFieldError

__all__ = ["CelExpression", "compile_cel", "sample_of", "to_python"]

_ENV = celpy.Environment()
_MACROS = {"all", "exists", "exists_one", "map", "filter"}


class CelExpression:
    """A parsed CEL expression and the field paths it reads under ``data``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._ast = _ENV.compile(text)
        self._program = _ENV.program(self._ast)
        bound: set[str] = set()
        self.paths: list[tuple[str, ...]] = []
        self.names: set[str] = set()
        _collect(self._ast, self.paths, self.names, bound)
        self.names -= bound

    def evaluate(self, data: Mapping[str, Any]) -> Any:
        """The value over ``data``, as plain Python (raises ``CELEvalError`` on errors)."""
        activation = {"data": json_to_cel(dict(data))}
        return to_python(self._program.evaluate(activation))


_PARSING = threading.Lock()


@functools.lru_cache(maxsize=1024)
def _parsed(text: str) -> CelExpression:
    # Parsing costs milliseconds (a lark parser); an expression's text never changes. Workflow
    # tasks run on several threads and the parser is shared: one parse at a time. Evaluation
    # builds its own evaluator for each call, so it needs no lock.
    with _PARSING:
        return CelExpression(text)


def compile_cel(
    text: str,
    *,
    where: str,
    schema: Mapping[str, Any] | None,
    boolean: bool = False,
    step: str | None = None,
    edge: str | None = None,
) -> CelExpression:
    """Parse and check ``text``; ``where`` names it in errors ("condition of edge a -> b").

    Raises:
        ConditionSyntaxError: It does not parse.
        UnknownFieldError: It reads a variable other than ``data`` or a field ``schema`` lacks.
        ConditionTypeError: It does not type-check, or ``boolean`` and it is not a boolean.
    """
    try:
        expression = _parsed(text)
    except CELParseError as exc:
        detail = str(exc).strip().splitlines()
        raise ConditionSyntaxError(
            f"{where}: {text!r} does not parse as CEL ({' '.join(d.strip() for d in detail)})",
            step=step,
            edge=edge,
        ) from None
    unknown = sorted(expression.names - {"data"})
    if unknown:
        raise UnknownFieldError(
            f"{where}: {text!r} reads {unknown[0]!r}; the only variable is 'data' (e.g. data.{unknown[0]})",
            step=step,
            edge=edge,
        )
    if schema is None:
        return expression
    for path in expression.paths:
        missing = _missing(path, schema)
        if missing is not None:
            raise UnknownFieldError(
                f"{where}: {text!r} reads {'.'.join(missing)}, a field the data does not have",
                step=step,
                edge=edge,
            )
    sample = sample_of(schema, schema)
    if not isinstance(sample, dict) or any(_sample_unknown(path, sample) for path in expression.paths):
        return expression  # some field's type is open: nothing more to check
    try:
        value = expression.evaluate(sample)
    except CELEvalError as exc:
        message = str(exc.args[0]) if exc.args else str(exc)
        if "overload" in message or "TypeError" in str(exc):
            raise ConditionTypeError(
                f"{where}: {text!r} does not type-check: {message}", step=step, edge=edge
            ) from None
        return expression  # a value error on sample data (an empty list's first item, say)
    if boolean and not isinstance(value, bool):
        raise ConditionTypeError(
            f"{where}: {text!r} gives {type(value).__name__}, not a boolean", step=step, edge=edge
        )
    return expression


def _collect(node: Any, paths: list[tuple[str, ...]], names: set[str], bound: set[str]) -> None:
    if isinstance(node, Tree):
        if node.data == "member_dot":
            path = _path(node)
            if path is not None:
                paths.append(path)
                names.add(path[0])
                return
        if node.data == "member_dot_arg" and len(node.children) >= 2:
            method = node.children[1]
            if isinstance(method, Token) and str(method) in _MACROS and len(node.children) > 2:
                args = node.children[2]
                first = args.children[0] if isinstance(args, Tree) and args.children else None
                variable = _bare_ident(first)
                if variable is not None:
                    bound.add(variable)
        if node.data == "ident" and node.children:
            names.add(str(node.children[0]))
        for child in node.children:
            _collect(child, paths, names, bound)


def _path(node: Any) -> tuple[str, ...] | None:
    """``data.a.b`` as ("data", "a", "b"); None when the chain does not start at a name."""
    if isinstance(node, Tree) and node.data == "member_dot":
        base = _path(node.children[0])
        return None if base is None else (*base, str(node.children[1]))
    if isinstance(node, Tree) and node.data in ("member", "primary") and len(node.children) == 1:
        return _path(node.children[0])
    if isinstance(node, Tree) and node.data == "ident":
        return (str(node.children[0]),)
    return None


def _bare_ident(node: Any) -> str | None:
    while isinstance(node, Tree) and len(node.children) == 1 and node.data != "ident":
        node = node.children[0]
    if isinstance(node, Tree) and node.data == "ident":
        return str(node.children[0])
    return None


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, Mapping) else {}
        return _resolve(target, root) if isinstance(target, Mapping) else {}
    options = schema.get("anyOf")
    if isinstance(options, list):
        objects = [o for o in (_resolve(o, root) for o in options) if o.get("type") != "null"]
        if len(objects) == 1:
            return objects[0]
    return schema


def _missing(path: tuple[str, ...], root: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The prefix of ``path`` (after ``data``) that ``root`` says cannot exist, or None."""
    schema = _resolve(root, root)
    for depth, name in enumerate(path[1:], start=1):
        properties = schema.get("properties")
        if not isinstance(properties, Mapping):
            return None  # an open object (or not an object we know): anything may be there
        if name not in properties:
            # Listed properties are the data's fields unless the schema says more may come.
            extra = schema.get("additionalProperties")
            return None if extra is True or isinstance(extra, Mapping) else path[: depth + 1]
        schema = _resolve(properties[name], root)
    return None


def sample_of(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Any:
    """A value of the schema's type (None where the type is open)."""
    schema = _resolve(schema, root)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        return {name: sample_of(sub, root) for name, sub in properties.items()}
    return {"string": "", "integer": 0, "number": 0.0, "boolean": False, "array": []}.get(str(kind))


def _sample_unknown(path: tuple[str, ...], sample: Mapping[str, Any]) -> bool:
    value: Any = sample
    for name in path[1:]:
        if not isinstance(value, Mapping) or name not in value:
            return True
        value = value[name]
    return value is None or value == {}


def to_python(value: Any) -> Any:
    """A CEL value as plain JSON-able Python (timestamps as ISO 8601 text)."""
    if isinstance(value, celtypes.BoolType):
        return bool(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, celtypes.StringType):
        return str(value)
    if isinstance(value, celtypes.IntType | celtypes.UintType):
        return int(value)
    if isinstance(value, celtypes.DoubleType):
        return float(value)
    if isinstance(value, Mapping):
        return {str(to_python(k)): to_python(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_python(v) for v in value]
    if value is None or isinstance(value, celtypes.NullType):
        return None
    return value
