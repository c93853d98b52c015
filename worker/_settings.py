"""The worker's settings: command-line flags over ``DWF_*`` environment variables over defaults.

Every option is declared once in :data:`OPTIONS` (its environment variable, its flag, how to
parse it), so the argparse flags, the environment, the documentation table and the compose
file checks cannot drift apart. A bad value raises :class:`ConfigurationError` with one line
that names the flag or variable it came from.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from sdk import DEFAULT_TASK_QUEUE, DurableWorkflowError

__all__ = [
    "ENVIRONMENT_VARIABLES",
    "OPTIONS",
    "ConfigurationError",
    "SettingOption",
    "WorkerSettings",
    "add_worker_arguments",
]

LogFormat = Literal["json", "text"]

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_MODULE_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_ASYNC_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}


class ConfigurationError(DurableWorkflowError, ValueError):
    """A setting is missing, malformed or inconsistent; the message is one line naming it.

    ``python -m worker`` prints the message and exits with status 2.
    """


@dataclass(frozen=True, kw_only=True)
class WorkerSettings:
    """Everything ``python -m worker`` (and ``dwf worker``) needs to run.

    Build it with :meth:`load` (flags, then environment, then defaults) or directly in code.
    """

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    task_queue: str = DEFAULT_TASK_QUEUE
    database_url: str = "sqlite+aiosqlite:///dwf.db"
    app: tuple[str, ...] = ()
    max_concurrent_activities: int | None = None
    max_concurrent_workflow_tasks: int | None = None
    temporal_tls: bool = False
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    temporal_tls_ca: Path | None = None
    temporal_api_key: str | None = dataclasses.field(default=None, repr=False)
    http_host: str = "0.0.0.0"
    http_port: int = 9464
    shutdown_grace: float = 30.0
    log_level: str = "INFO"
    log_format: LogFormat = "text"
    otel_tracing: bool = False

    @property
    def use_tls(self) -> bool:
        """TLS is on when asked for, or implied by client certificates, a CA or an API key."""
        return (
            self.temporal_tls
            or self.temporal_api_key is not None
            or any(
                p is not None for p in (self.temporal_tls_cert, self.temporal_tls_key, self.temporal_tls_ca)
            )
        )

    @property
    def database_url_redacted(self) -> str:
        """The database URL with its password hidden, for logs."""
        try:
            return make_url(self.database_url).render_as_string(hide_password=True)
        except ArgumentError:
            return "<unparsable URL>"

    @classmethod
    def load(
        cls,
        args: argparse.Namespace | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> WorkerSettings:
        """Settings from parsed flags (see :func:`add_worker_arguments`), then ``environ``.

        Args:
            args: Parsed arguments; a flag left unset (None) falls back to the environment.
            environ: The environment (``os.environ`` when None).

        Raises:
            ConfigurationError: A value is malformed, missing or inconsistent.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        explicit: set[str] = set()
        for option in OPTIONS:
            flag_value = getattr(args, option.field, None) if args is not None else None
            if flag_value is not None:
                source, raw = option.flag, flag_value
            elif environ.get(option.env, "").strip() != "":
                source, raw = option.env, environ[option.env]
            else:
                continue
            explicit.add(option.field)
            values[option.field] = option.parse(str(raw).strip(), source)
        settings = cls(**values)
        settings._check(explicit)
        return settings

    def _check(self, explicit: set[str]) -> None:
        if not self.app:
            raise ConfigurationError(
                f"{_opt('app').env} is not set: name the module(s) that define your workflows, "
                f"e.g. {_opt('app').env}=examples.expense_approval (or {_opt('app').flag})"
            )
        cert, key = self.temporal_tls_cert, self.temporal_tls_key
        if (cert is None) != (key is None):
            given, missing = (_opt("temporal_tls_cert"), _opt("temporal_tls_key"))
            if cert is None:
                given, missing = missing, given
            raise ConfigurationError(f"{given.env} is set but {missing.env} is not: give both or neither")
        implied = [
            o.env
            for o in (_opt("temporal_tls_cert"), _opt("temporal_tls_ca"), _opt("temporal_api_key"))
            if getattr(self, o.field) is not None
        ]
        if "temporal_tls" in explicit and not self.temporal_tls and implied:
            raise ConfigurationError(
                f"{_opt('temporal_tls').env} is false but {', '.join(implied)} need(s) TLS: "
                f"drop {_opt('temporal_tls').env} or set it to true"
            )

    def describe(self) -> dict[str, Any]:
        """The settings as JSON-able values, secrets hidden (for the start-up log line)."""
        out: dict[str, Any] = {}
        for option in OPTIONS:
            value = getattr(self, option.field)
            if option.secret and value is not None:
                value = "***"
            elif option.field == "database_url":
                value = self.database_url_redacted
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = ",".join(value)
            out[option.field] = value
        return out


# Parsers: each takes the raw text and where it came from (a flag or a variable).


def _text(raw: str, source: str) -> str:
    if not raw:
        raise ConfigurationError(f"{source}: must not be empty")
    return raw


def _address(raw: str, source: str) -> str:
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigurationError(f"{source}: expected host:port (e.g. localhost:7233), got {raw!r}")
    return raw


def _database_url(raw: str, source: str) -> str:
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ConfigurationError(
            f"{source}: not a database URL: {raw!r} "
            "(e.g. sqlite+aiosqlite:///dwf.db or postgresql+asyncpg://user:pw@host:5432/dwf)"
        ) from None
    backend, driver = url.get_backend_name(), url.get_driver_name()
    wanted = _ASYNC_DRIVERS.get(backend)
    if wanted is None:
        raise ConfigurationError(f"{source}: unsupported database {backend!r}: use sqlite or postgresql")
    if driver != wanted:
        raise ConfigurationError(
            f"{source}: the mirror needs the async driver: write {backend}+{wanted}://... "
            f"instead of {url.drivername}://..."
        )
    return raw


def _modules(raw: str, source: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in raw.split(",") if part.strip())
    for name in names:
        if not _MODULE_RE.match(name):
            raise ConfigurationError(
                f"{source}: {name!r} is not a module path (e.g. examples.expense_approval)"
            )
    if not names:
        raise ConfigurationError(f"{source}: name at least one module")
    return names


def _positive_int(raw: str, source: str) -> int:
    if not raw.isdigit() or int(raw) == 0:
        raise ConfigurationError(f"{source}: expected a positive integer, got {raw!r}")
    return int(raw)


def _workflow_slots(raw: str, source: str) -> int:
    value = _positive_int(raw, source)
    if value < 2:
        raise ConfigurationError(
            f"{source}: must be at least 2 (Temporal's sticky workflow cache needs two slots)"
        )
    return value


def _port(raw: str, source: str) -> int:
    if not raw.isdigit() or int(raw) > 65535:
        raise ConfigurationError(f"{source}: expected a port number 0-65535 (0 disables), got {raw!r}")
    return int(raw)


def _seconds(raw: str, source: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise ConfigurationError(f"{source}: expected a number of seconds >= 0, got {raw!r}")
    return value


def _bool(raw: str, source: str) -> bool:
    lowered = raw.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigurationError(f"{source}: expected true or false, got {raw!r}")


def _file(raw: str, source: str) -> Path:
    path = Path(raw).expanduser()
    if not path.is_file():
        raise ConfigurationError(f"{source}: no such file: {raw}")
    if not os.access(path, os.R_OK):
        raise ConfigurationError(f"{source}: file is not readable: {raw}")
    return path


def _log_level(raw: str, source: str) -> str:
    level = raw.upper()
    if level not in _LOG_LEVELS:
        raise ConfigurationError(f"{source}: expected one of {', '.join(_LOG_LEVELS)}, got {raw!r}")
    return level


def _log_format(raw: str, source: str) -> str:
    value = raw.lower()
    if value not in ("json", "text"):
        raise ConfigurationError(f"{source}: expected json or text, got {raw!r}")
    return value


def _otel(raw: str, source: str) -> bool:
    enabled = _bool(raw, source)
    if enabled and importlib.util.find_spec("opentelemetry") is None:
        raise ConfigurationError(
            f"{source}: tracing needs OpenTelemetry: pip install 'temporalio[opentelemetry]'"
        )
    return enabled


@dataclass(frozen=True)
class SettingOption:
    """One setting: its field on :class:`WorkerSettings`, variable, flag, parser and help."""

    field: str
    env: str
    flag: str
    parse: Callable[[str, str], Any]
    help: str
    metavar: str = "VALUE"
    secret: bool = False

    @property
    def boolean(self) -> bool:
        """A yes/no setting: its flag alone means true (``--tls``), or takes a value (``--tls false``)."""
        return self.parse in (_bool, _otel)

    @property
    def default(self) -> Any:
        """The default from :class:`WorkerSettings`."""
        return next(f.default for f in dataclasses.fields(WorkerSettings) if f.name == self.field)


OPTIONS: tuple[SettingOption, ...] = (
    SettingOption(
        "temporal_address", "DWF_TEMPORAL_ADDRESS", "--temporal-address", _address,
        "host:port of the Temporal frontend", "HOST:PORT",
    ),
    SettingOption(
        "temporal_namespace", "DWF_TEMPORAL_NAMESPACE", "--namespace", _text, "Temporal namespace", "NAME"
    ),
    SettingOption("task_queue", "DWF_TASK_QUEUE", "--task-queue", _text, "task queue to poll", "NAME"),
    SettingOption(
        "database_url", "DWF_DATABASE_URL", "--database-url", _database_url,
        "SQLAlchemy async URL of the SQL mirror", "URL",
    ),
    SettingOption(
        "app", "DWF_APP", "--app", _modules,
        "module(s) defining the workflows, comma separated (required)", "MODULE[,MODULE]",
    ),
    SettingOption(
        "max_concurrent_activities", "DWF_MAX_CONCURRENT_ACTIVITIES", "--max-concurrent-activities",
        _positive_int, "activities run at once (temporalio's default when unset)", "N",
    ),
    SettingOption(
        "max_concurrent_workflow_tasks", "DWF_MAX_CONCURRENT_WORKFLOW_TASKS",
        "--max-concurrent-workflow-tasks", _workflow_slots,
        "workflow tasks run at once (temporalio's default when unset)", "N",
    ),
    SettingOption(
        "temporal_tls", "DWF_TEMPORAL_TLS", "--tls", _bool,
        "connect with TLS (implied by a certificate, CA or API key)", "BOOL",
    ),
    SettingOption(
        "temporal_tls_cert", "DWF_TEMPORAL_TLS_CERT", "--tls-cert", _file,
        "client certificate (PEM) for mTLS", "PATH",
    ),
    SettingOption(
        "temporal_tls_key", "DWF_TEMPORAL_TLS_KEY", "--tls-key", _file,
        "client private key (PEM) for mTLS", "PATH",
    ),
    SettingOption(
        "temporal_tls_ca", "DWF_TEMPORAL_TLS_CA", "--tls-ca", _file,
        "CA certificate (PEM) to verify the server", "PATH",
    ),
    SettingOption(
        "temporal_api_key", "DWF_TEMPORAL_API_KEY", "--api-key", _text,
        "Temporal Cloud API key (prefer the variable to the flag)", "KEY", secret=True,
    ),
    SettingOption(
        "http_host", "DWF_HTTP_HOST", "--http-host", _text, "address the health/metrics server binds", "HOST"
    ),
    SettingOption(
        "http_port", "DWF_HTTP_PORT", "--http-port", _port,
        "port of /healthz, /readyz and /metrics (0 disables)", "PORT",
    ),
    SettingOption(
        "shutdown_grace", "DWF_SHUTDOWN_GRACE", "--shutdown-grace", _seconds,
        "seconds in-flight activities get to finish after SIGTERM", "SECONDS",
    ),
    SettingOption(
        "log_level", "DWF_LOG_LEVEL", "--log-level", _log_level, "DEBUG, INFO, WARNING or ERROR", "LEVEL"
    ),
    SettingOption("log_format", "DWF_LOG_FORMAT", "--log-format", _log_format, "json or text", "FORMAT"),
    SettingOption(
        "otel_tracing", "DWF_OTEL_TRACING", "--otel-tracing", _otel,
        "trace workflows and activities with OpenTelemetry", "BOOL",
    ),
)  # fmt: skip
"""Every setting, in documentation order."""

ENVIRONMENT_VARIABLES: frozenset[str] = frozenset(o.env for o in OPTIONS)
"""The ``DWF_*`` variables the worker reads."""


def _opt(field: str) -> SettingOption:
    return next(o for o in OPTIONS if o.field == field)


def add_worker_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add one flag per setting to ``parser`` (for ``python -m worker`` and ``dwf worker``).

    Every flag defaults to None, so :meth:`WorkerSettings.load` can tell "not given" (use the
    environment) from a value; values are parsed there, so errors look the same for flags and
    variables.
    """
    group = parser.add_argument_group(
        "worker settings", "Each flag overrides its environment variable (shown in brackets)."
    )
    for option in OPTIONS:
        default = option.default
        shown = str(default).lower() if isinstance(default, bool) else default
        suffix = f" [{option.env}; default {shown}]" if default not in (None, ()) else f" [{option.env}]"
        extra: dict[str, Any] = {"nargs": "?", "const": "true"} if option.boolean else {}
        group.add_argument(
            option.flag,
            dest=option.field,
            default=None,
            metavar=option.metavar,
            help=option.help + suffix,
            **extra,
        )
    return parser
