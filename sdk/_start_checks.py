"""What the client checks before it starts an instance or looks one up: one place.

The start input must fit the workflow's parameter types (the Python definition, or the JSON
schemas the mirror stores when the caller has no definition), hold only values a database can
store, and stay under ``sdk.MAX_PAYLOAD_BYTES``; ids and tenants must be storable too.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from ._definition import WorkflowDefinition
from ._errors import FormValidationError, Refusal
from ._policy import check_size, check_text

__all__ = ["check_against_schema", "check_args", "check_storable_input", "refuse_unstorable"]


def check_args(definition: WorkflowDefinition[..., Any], args: tuple[Any, ...]) -> list[Any]:
    """The arguments validated into the definition's parameter types (models from dicts)."""
    if len(args) != len(definition.param_types):
        raise TypeError(
            f"workflow {definition.name!r} takes {len(definition.param_types)} argument(s), got {len(args)}"
        )
    checked: list[Any] = []
    for arg, typ in zip(args, definition.param_types, strict=True):
        if isinstance(typ, type) and issubclass(typ, BaseModel) and not isinstance(arg, typ):
            try:
                arg = typ.model_validate(arg)
            except ValidationError as exc:
                raise FormValidationError.from_pydantic(typ.__name__, exc) from None
        checked.append(arg)
    return checked


def check_against_schema(name: str, schemas: Any, args: list[Any]) -> None:
    """Validate start input against the JSON schemas the mirror stores for a definition.

    For a caller without the Python definition (``dwf start`` without ``--app``). A definition
    registered before its schemas were stored has none: the workflow validates on receipt.
    """
    if not isinstance(schemas, list):
        return
    if len(args) != len(schemas):
        raise TypeError(f"workflow {name!r} takes {len(schemas)} argument(s), got {len(args)}")
    import jsonschema

    for index, (arg, schema) in enumerate(zip(args, schemas, strict=True)):
        value = arg.model_dump(mode="json") if isinstance(arg, BaseModel) else arg
        errors = sorted(
            jsonschema.Draft202012Validator(schema).iter_errors(value), key=lambda e: list(e.path)
        )
        if errors:
            found = [
                {
                    "field": ".".join(str(p) for p in e.path) or "__root__",
                    "message": e.message,
                    "type": str(e.validator),
                }
                for e in errors
            ]
            raise FormValidationError(str(schema.get("title", f"argument {index}")), found)


def refuse_unstorable(**fields: Any) -> None:
    """Raise ``InvalidInputError`` for an id no database can look up (a NUL, say)."""
    try:
        check_text(**fields)
    except Refusal as refusal:
        raise refusal.to_exception() from None


def check_storable_input(args: list[Any]) -> None:
    """Refuse start input no mirror can store, or too large, before anything is sent."""
    # The Python values: a JSON dump would already have turned NaN into null.
    values = [a.model_dump() if isinstance(a, BaseModel) else a for a in args]
    try:
        check_text(args=values)
        check_size(
            [a.model_dump(mode="json") if isinstance(a, BaseModel) else a for a in args], "the start input"
        )
    except Refusal as refusal:
        raise refusal.to_exception() from None
