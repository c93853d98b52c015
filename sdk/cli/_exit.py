"""Exit codes, and how an exception becomes one clear line on stderr and a code.

Every command ends in :func:`classify`: an error the SDK raises on purpose keeps its meaning
(``TaskNotFoundError`` is "not found", exit 3); a driver or transport error that means the
server or the database cannot be reached is exit 7; anything else is exit 1.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import IntEnum

from sdk import (
    DefinitionError,
    FormValidationError,
    MirrorUnavailableError,
    NotFoundError,
    PermissionDeniedError,
    TaskClaimConflictError,
    TaskNotPendingError,
    TaskRejectedError,
)

__all__ = ["CannotConnectError", "CommandError", "ExitCode", "UsageError", "classify", "one_line"]


class ExitCode(IntEnum):
    """What ``dwf`` returns to the shell."""

    OK = 0
    FAILED = 1
    """The operation ran and failed: the audit found mismatches, the workflow failed."""
    USAGE = 2
    """A bad argument, flag or variable (the code Typer gives its own usage errors)."""
    NOT_FOUND = 3
    PERMISSION_DENIED = 4
    INVALID_DATA = 5
    """Form or workflow input that does not validate; each failing field is printed."""
    CONFLICT = 6
    """A claim lost to someone else's, a task no longer pending, a workflow id in use."""
    CANNOT_CONNECT = 7
    """Temporal or the database cannot be reached."""
    INTERRUPTED = 130
    BROKEN_PIPE = 141
    """The reader of the output went away (``| head``); nothing is printed."""


class CommandError(Exception):
    """An error the command line reports as one line, with its own exit code.

    Args:
        message: The line (without the ``dwf: error:`` prefix).
        code: The exit code.
        details: Further lines, printed indented under the first.
    """

    code = ExitCode.FAILED

    def __init__(self, message: str, *, code: ExitCode | None = None, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.details = list(details)


class UsageError(CommandError):
    """A bad argument, flag or variable (exit 2)."""

    code = ExitCode.USAGE


class CannotConnectError(CommandError):
    """Temporal or the database is unreachable (exit 7)."""

    code = ExitCode.CANNOT_CONNECT


def one_line(text: object, limit: int = 400) -> str:
    """``text`` on one line (whitespace collapsed), cut at ``limit`` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


_OS_MESSAGE = re.compile(r'(?:message|error): "([^"]+)"')


def temporal_connect_reason(exc: BaseException) -> str:
    """The useful part of temporalio's connection error (``Connection refused``, ...)."""
    found = _OS_MESSAGE.search(str(exc))
    if found:
        return found[1]
    return one_line(str(exc).removeprefix("Failed client connect: "), 200)


def _database_error(exc: BaseException) -> tuple[ExitCode, str] | None:
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    if not isinstance(exc, DBAPIError):
        return None
    reason = one_line(str(exc.orig).splitlines()[0] if exc.orig is not None else exc)
    if "no such table" in reason or ("relation" in reason and "does not exist" in reason):
        return ExitCode.FAILED, (
            f"the database has no mirror tables ({reason}): create them with 'dwf db upgrade'"
        )
    if isinstance(exc, OperationalError | InterfaceError) or type(exc) is DBAPIError:
        # OperationalError: SQLite cannot open the file; a bare DBAPIError: asyncpg refused the
        # connection (unknown database, authentication).
        return ExitCode.CANNOT_CONNECT, f"cannot use the mirror database: {reason}"
    return ExitCode.FAILED, f"database error: {reason}"


def _temporal_error(exc: BaseException) -> tuple[ExitCode, str] | None:
    from temporalio.exceptions import WorkflowAlreadyStartedError
    from temporalio.service import RPCError, RPCStatusCode

    if isinstance(exc, WorkflowAlreadyStartedError):
        return ExitCode.CONFLICT, f"a workflow with id {exc.workflow_id!r} is already running"
    if not isinstance(exc, RPCError):
        return None
    codes = {
        RPCStatusCode.UNAVAILABLE: ExitCode.CANNOT_CONNECT,
        RPCStatusCode.DEADLINE_EXCEEDED: ExitCode.CANNOT_CONNECT,
        RPCStatusCode.NOT_FOUND: ExitCode.NOT_FOUND,
        RPCStatusCode.PERMISSION_DENIED: ExitCode.PERMISSION_DENIED,
        RPCStatusCode.UNAUTHENTICATED: ExitCode.PERMISSION_DENIED,
        RPCStatusCode.INVALID_ARGUMENT: ExitCode.USAGE,
        RPCStatusCode.ALREADY_EXISTS: ExitCode.CONFLICT,
    }
    return codes.get(exc.status, ExitCode.FAILED), f"Temporal: {one_line(exc.message or exc)}"


def classify(exc: BaseException) -> tuple[ExitCode, str, list[str]]:
    """The exit code, the one-line message and any detail lines for an exception."""
    from alembic.util.exc import CommandError as AlembicCommandError

    if isinstance(exc, CommandError):
        return exc.code, one_line(exc), exc.details
    if isinstance(exc, FormValidationError):
        details = [f"{e.get('field', '?')}: {one_line(e.get('message', ''))}" for e in exc.errors]
        return ExitCode.INVALID_DATA, f"invalid data for {exc.form_name}:", details
    simple: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], ExitCode], ...] = (
        (NotFoundError, ExitCode.NOT_FOUND),
        (PermissionDeniedError, ExitCode.PERMISSION_DENIED),
        ((TaskClaimConflictError, TaskNotPendingError), ExitCode.CONFLICT),
        (TaskRejectedError, ExitCode.FAILED),
        ((DefinitionError, MirrorUnavailableError, AlembicCommandError), ExitCode.USAGE),
    )
    for kinds, code in simple:
        if isinstance(exc, kinds):
            return code, one_line(exc), []
    for translate in (_database_error, _temporal_error):
        found = translate(exc)
        if found is not None:
            return found[0], found[1], []
    if isinstance(exc, ConnectionError | TimeoutError) or type(exc).__name__ == "gaierror":
        return ExitCode.CANNOT_CONNECT, f"cannot connect: {one_line(exc) or type(exc).__name__}", []
    if isinstance(exc, ValueError):
        # The SDK's checks of caller input (a reassignment without a reason, an empty comment),
        # and the worker's ConfigurationError (a bad setting of ``dwf worker`` or ``dwf dev``).
        return ExitCode.USAGE, one_line(exc), []
    return ExitCode.FAILED, f"{type(exc).__name__}: {one_line(exc)}", []
