"""A workflow's start input, decoded in workflow code so a bad one fails the workflow cleanly.

Temporal decodes a workflow's arguments before any workflow code runs; when that fails, the
workflow *task* fails and is retried forever, and the instance never reaches the mirror. So the
compiled ``run`` method takes its arguments as plain JSON values and this module validates them
into the author's parameter types: input that does not fit (any Temporal client can start a
workflow) becomes a non-retryable ``InvalidInputError`` failure, FAILED in the mirror with the
reason. Sandbox safe.
"""

from __future__ import annotations

import functools
import typing
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from temporalio.exceptions import ApplicationError

from ._errors import ErrorKind, field_errors
from ._storable import unstorable

if TYPE_CHECKING:
    from ._definition import WorkflowDefinition

__all__ = ["check_memo", "decode_args"]


_SHARED_MODULES = frozenset({"builtins", "typing", "types", "collections.abc", "datetime", "decimal", "uuid"})
"""Modules whose classes are the same objects in every workflow run (the sandbox passes the
standard library through); the author's classes are new objects in each run."""


@functools.lru_cache(maxsize=256)
def _adapter(typ: Any) -> TypeAdapter[Any]:
    return TypeAdapter(typ)


def _shared(typ: Any) -> bool:
    """Whether ``typ`` is built only of classes every run shares (``int``, ``list[str]``, ...)."""
    args = typing.get_args(typ)
    origin = typing.get_origin(typ)
    if origin is not None or args:
        return all(_shared(part) for part in (origin, *args) if part is not None and part is not Ellipsis)
    if not isinstance(typ, type) and not hasattr(typ, "__module__"):
        typ = type(typ)  # a value (of a Literal): shared when its class is
    return getattr(typ, "__module__", None) in _SHARED_MODULES


def _validate(typ: Any, value: Any) -> Any:
    """``value`` validated into ``typ``. The sandbox imports the author's module, its models and
    other types included, again for every workflow run: a cache keyed by them would miss every
    time and keep each run's copy alive. A model validates itself; other types of the author's
    get an adapter of their own; only types every run shares are cached."""
    if isinstance(typ, type) and issubclass(typ, BaseModel):
        return typ.model_validate(value)
    adapter = _adapter(typ) if _shared(typ) else TypeAdapter(typ)
    return adapter.validate_python(value)


def decode_args(
    definition: WorkflowDefinition[..., Any], args: tuple[Any, ...]
) -> tuple[tuple[Any, ...], ApplicationError | None]:
    """The arguments validated into the definition's types, or the failure that explains why not."""
    expected = len(definition.param_types)
    if len(args) != expected:
        message = f"workflow {definition.name!r} takes {expected} argument(s), got {len(args)}"
        return (), _invalid(message, [])
    errors = unstorable(list(args), "args")
    if errors:
        return (), _invalid("the start input holds values no database can store", errors)
    decoded: list[Any] = []
    for index, (arg, typ) in enumerate(zip(args, definition.param_types, strict=True)):
        try:
            decoded.append(_validate(typ, arg))
        except ValidationError as exc:
            found = [{**e, "field": f"args.{index}.{e['field']}"} for e in field_errors(exc)]
            return (), _invalid(f"argument {index} of workflow {definition.name!r} is invalid", found)
    return tuple(decoded), None


def check_memo(tenant_id: str | None, created_by: str | None) -> ApplicationError | None:
    """The failure for a tenant or creator (from the start's memo) no database can store."""
    errors = unstorable({"tenant_id": tenant_id, "created_by": created_by})
    return _invalid("the instance's memo holds values no database can store", errors) if errors else None


def _invalid(message: str, errors: list[dict[str, Any]]) -> ApplicationError:
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:10])
    text = f"{message}: {detail}" if detail else message
    return ApplicationError(
        text,
        {"kind": ErrorKind.INVALID_INPUT.value, "errors": errors[:50]},
        type=ErrorKind.INVALID_INPUT.value,
        non_retryable=True,
    )
