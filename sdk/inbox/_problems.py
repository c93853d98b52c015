"""Errors as RFC 9457 problem details (``application/problem+json``).

Every refusal the SDK raises maps to one HTTP status; the body names the SDK's exception
(``kind``), says why (``detail``) and, for invalid input, lists each failing field (``errors``:
``{"field", "message", "type"}``, the same entries as ``FormValidationError.errors``). The
client checks everything before it sends a command, so a refusal has changed nothing.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from sdk import (
    DurableWorkflowError,
    FormValidationError,
    InvalidInputError,
    MirrorUnavailableError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    TaskClaimConflictError,
    TaskNotPendingError,
    TaskRejectedError,
    UnauthenticatedCommandError,
)

from ._auth import AuthenticationError

__all__ = ["PROBLEM_JSON", "FieldError", "Problem", "install_problem_handlers", "problem_response"]

PROBLEM_JSON = "application/problem+json"

# Most specific first: the first class an exception is an instance of decides.
_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (PayloadTooLargeError, 413),
    (FormValidationError, 422),
    (InvalidInputError, 422),
    (NotFoundError, 404),
    (TaskNotPendingError, 409),
    (TaskClaimConflictError, 409),
    (TaskRejectedError, 409),
    # The workers could not verify the inbox's signature: a deployment fault, not the caller's.
    (UnauthenticatedCommandError, 502),
    (PermissionDeniedError, 403),
    (MirrorUnavailableError, 503),
)


class FieldError(BaseModel):
    """One failing field: its dotted path, why, and pydantic's error type."""

    field: str
    message: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem details object."""

    type: str = Field(description="A URI naming the kind of problem")
    title: str
    status: int
    detail: str | None = None
    kind: str | None = Field(default=None, description="The SDK exception's class name")
    rule: str | None = Field(
        default=None, description="Which rule refused, where several share a kind (e.g. already_voted)"
    )
    errors: list[FieldError] = Field(default_factory=list)


def problem_response(
    status: int,
    detail: str | None,
    *,
    kind: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    rule: str | None = None,
) -> JSONResponse:
    """A ``application/problem+json`` response (``rule`` refines its ``type``)."""
    title = HTTPStatus(status).phrase
    slug = kind or title.replace(" ", "")
    if rule is not None:
        slug = f"{slug}:{rule}"
    problem = Problem(
        type=f"urn:durable-workflows:problem:{slug}",
        title=title,
        status=status,
        detail=detail,
        kind=kind,
        rule=rule,
        errors=[FieldError(**_field(e)) for e in errors or []],
    )
    return JSONResponse(
        problem.model_dump(mode="json", exclude_none=True),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _field(error: dict[str, Any]) -> dict[str, str]:
    return {
        "field": str(error.get("field", "__root__")),
        "message": str(error.get("message", "")),
        "type": str(error.get("type", "invalid")),
    }


def status_of(exc: Exception) -> int:
    """The HTTP status an SDK exception maps to (500 for one not in the table)."""
    return next((status for cls, status in _STATUS if isinstance(exc, cls)), 500)


async def _sdk_error(request: Request, exc: Exception) -> JSONResponse:
    errors = getattr(exc, "errors", None)
    return problem_response(
        status_of(exc), str(exc), kind=type(exc).__name__, errors=errors if isinstance(errors, list) else None
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "field": ".".join(str(p) for p in err.get("loc", ())) or "__root__",
            "message": err.get("msg", ""),
            "type": err.get("type", "invalid"),
        }
        for err in exc.errors()
    ]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem_response(422, f"invalid request: {detail}", kind="RequestValidationError", errors=errors)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    kind = "AuthenticationError" if exc.status_code == 401 else None
    return problem_response(
        exc.status_code, str(exc.detail), kind=kind, headers=dict(exc.headers) if exc.headers else None
    )


async def _authentication_error(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(
        401,
        str(exc),
        kind="AuthenticationError",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


async def _already_started(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(409, str(exc), kind="WorkflowAlreadyStartedError")


async def _rpc_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RPCError)
    status = {
        RPCStatusCode.NOT_FOUND: 404,
        RPCStatusCode.INVALID_ARGUMENT: 422,
        RPCStatusCode.ALREADY_EXISTS: 409,
        RPCStatusCode.FAILED_PRECONDITION: 409,
    }.get(exc.status, 502)
    return problem_response(status, f"Temporal: {exc.message}", kind="TemporalError")


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` with problem details."""
    app.add_exception_handler(DurableWorkflowError, _sdk_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(AuthenticationError, _authentication_error)
    app.add_exception_handler(WorkflowAlreadyStartedError, _already_started)
    app.add_exception_handler(RPCError, _rpc_error)
