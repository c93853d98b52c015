"""The worker's settings: one pydantic-settings model for flags, ``DWF_*`` variables and docs.

:class:`WorkerSettings` declares every setting once: its type and checks, its default, its
help text (``description``), its flag and metavar (``json_schema_extra``). pydantic-settings
reads the ``DWF_<FIELD>`` environment variables and a ``.env`` file in the current directory;
flags (or any other front end's values) override both. A bad value raises
:class:`ConfigurationError` with one line naming the flag or variable it came from.

Building another front end (the ``dwf worker`` command) on the same declaration:

- :data:`OPTIONS` lists every setting as a :class:`SettingOption` (field, variable, flag,
  help, metavar, default, whether it is a yes/no flag, whether it is a secret), in
  documentation order; it is derived from ``WorkerSettings.model_fields``.
- :func:`settings_from` takes the values the user gave on the command line, by field name
  (a value of None means "not given"; text or typed values both work), reads the rest from the
  environment and ``.env``, and checks the result. Errors name the option's flag (or the one
  passed in ``flags=``, for a value given under another name such as a global ``--address``);
  ``check=False`` skips the checks a worker needs, for commands that only connect.

``python -m worker`` uses :func:`add_worker_arguments` (argparse flags from :data:`OPTIONS`)
and :meth:`WorkerSettings.load`, which is :func:`settings_from` over parsed arguments.
"""

from __future__ import annotations

import argparse
import contextvars
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import AfterValidator, BeforeValidator, Field, JsonValue, StringConstraints, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from sdk import DEFAULT_TASK_QUEUE, DurableWorkflowError

from . import _checks

__all__ = [
    "ENVIRONMENT_VARIABLES",
    "OPTIONS",
    "ConfigurationError",
    "SettingOption",
    "WorkerSettings",
    "add_worker_arguments",
    "settings_from",
]

ENV_PREFIX = "DWF_"
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LogFormat = Literal["json", "text"]


class ConfigurationError(DurableWorkflowError, ValueError):
    """A setting is missing, malformed or inconsistent; the message is one line naming it.

    ``python -m worker`` prints the message and exits with status 2.
    """


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
File = Annotated[Path | None, AfterValidator(_checks.readable_file)]


def _setting(
    default: Any, help: str, flag: str, metavar: str, *, expected: str | None = None, secret: bool = False
) -> Any:
    """A field's default and documentation: ``expected`` words the error for a malformed value."""
    extra: dict[str, JsonValue] = {"flag": flag, "metavar": metavar, "expected": expected, "secret": secret}
    return Field(default, description=help, repr=not secret, json_schema_extra=extra)


_BOOL = "expected true or false"
_COUNT = "expected a positive integer"


class _Environment(EnvSettingsSource):
    """The ``DWF_*`` variables of :data:`_ENVIRON` when set (tests, compose checks), else os.environ.

    Blank values count as unset, so ``DWF_HTTP_PORT=`` means the default.
    """

    def _load_env_vars(self) -> Mapping[str, str | None]:
        environ = _ENVIRON.get()
        loaded = super()._load_env_vars() if environ is None else {k.lower(): v for k, v in environ.items()}
        return {key: value for key, value in loaded.items() if value is None or value.strip()}


# What settings_from passes to the model besides the values: the environment to read instead of
# os.environ, and the flag each value came from (for the error message).
_ENVIRON: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar("environ", default=None)
_SOURCES: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar("sources", default=None)


class WorkerSettings(BaseSettings):
    """Everything ``python -m worker`` (and ``dwf worker``) needs to run.

    ``WorkerSettings()`` reads the ``DWF_*`` variables and ``.env`` (keyword arguments win);
    :func:`settings_from` does the same, adds the checks between settings and words every
    error as one line naming its flag or variable.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
        str_strip_whitespace=True,
    )

    temporal_address: Annotated[str, AfterValidator(_checks.address)] = _setting(
        "localhost:7233", "host:port of the Temporal frontend", "--temporal-address", "HOST:PORT"
    )
    temporal_namespace: Text = _setting(
        "default", "Temporal namespace", "--namespace", "NAME", expected="must not be empty"
    )
    task_queue: Text = _setting(
        DEFAULT_TASK_QUEUE, "task queue to poll", "--task-queue", "NAME", expected="must not be empty"
    )
    database_url: Annotated[str, AfterValidator(_checks.database_url)] = _setting(
        "sqlite+aiosqlite:///dwf.db", "SQLAlchemy async URL of the SQL mirror", "--database-url", "URL"
    )
    app: Annotated[tuple[str, ...], NoDecode, BeforeValidator(_checks.modules)] = _setting(
        (), "module(s) defining the workflows, comma separated (required)", "--app", "MODULE[,MODULE]"
    )
    sandbox_passthrough: Annotated[tuple[str, ...], NoDecode, BeforeValidator(_checks.modules)] = _setting(
        (), "module(s) the workflow sandbox imports once per process, not once per run (unchecked by it)",
        "--sandbox-passthrough", "MODULE[,MODULE]",
    )  # fmt: skip
    max_concurrent_activities: Annotated[int, Field(gt=0)] | None = _setting(
        None, "activities run at once (temporalio's default when unset)", "--max-concurrent-activities", "N",
        expected=_COUNT,
    )  # fmt: skip
    max_concurrent_workflow_tasks: Annotated[int, Field(ge=2)] | None = _setting(
        None, "workflow tasks run at once (temporalio's default when unset)",
        "--max-concurrent-workflow-tasks", "N",
        expected=f"{_COUNT}, at least 2 (Temporal's sticky workflow cache needs two slots)",
    )  # fmt: skip
    temporal_tls: bool = _setting(
        False, "connect with TLS (implied by a certificate, CA or API key)", "--tls", "BOOL", expected=_BOOL
    )
    temporal_tls_cert: File = _setting(None, "client certificate (PEM) for mTLS", "--tls-cert", "PATH")
    temporal_tls_key: File = _setting(None, "client private key (PEM) for mTLS", "--tls-key", "PATH")
    temporal_tls_ca: File = _setting(None, "CA certificate (PEM) to verify the server", "--tls-ca", "PATH")
    temporal_api_key: Text | None = _setting(
        None, "Temporal Cloud API key (prefer the variable to the flag)", "--api-key", "KEY",
        expected="must not be empty", secret=True,
    )  # fmt: skip
    http_host: Text = _setting(
        "0.0.0.0", "address the health/metrics server binds", "--http-host", "HOST",
        expected="must not be empty",
    )  # fmt: skip
    http_port: Annotated[int, Field(ge=0, le=65535)] = _setting(
        9464, "port of /healthz, /readyz and /metrics (0 disables)", "--http-port", "PORT",
        expected="expected a port number 0-65535 (0 disables)",
    )  # fmt: skip
    shutdown_grace: Annotated[float, Field(ge=0, allow_inf_nan=False)] = _setting(
        30.0, "seconds in-flight activities get to finish after SIGTERM", "--shutdown-grace", "SECONDS",
        expected="expected a number of seconds >= 0",
    )  # fmt: skip
    log_level: Annotated[LogLevel, _checks.one_of(*get_args(LogLevel))] = _setting(
        "INFO", "DEBUG, INFO, WARNING or ERROR", "--log-level", "LEVEL"
    )
    log_format: Annotated[LogFormat, _checks.one_of(*get_args(LogFormat))] = _setting(
        "text", "json or text", "--log-format", "FORMAT"
    )
    otel_tracing: Annotated[bool, AfterValidator(_checks.tracing)] = _setting(
        False, "trace workflows and activities with OpenTelemetry", "--otel-tracing", "BOOL", expected=_BOOL
    )
    notify_log: bool = _setting(
        False, "log every task notification (logger dwf.notifications)", "--notify-log", "BOOL",
        expected=_BOOL,
    )  # fmt: skip
    notify_webhook_url: Annotated[Text | None, AfterValidator(_checks.webhook_url)] = _setting(
        None, "POST every task notification here, signed (needs the secret)", "--notify-webhook-url", "URL"
    )
    notify_webhook_secret: Text | None = _setting(
        None, "the webhook's HMAC secret (prefer the variable to the flag)", "--notify-webhook-secret",
        "SECRET", expected="must not be empty", secret=True,
    )  # fmt: skip
    notify_smtp_host: Text | None = _setting(
        None, "e-mail every task notification through this SMTP server", "--notify-smtp-host", "HOST"
    )
    notify_smtp_port: Annotated[int, Field(ge=1, le=65535)] = _setting(
        25, "the SMTP server's port", "--notify-smtp-port", "PORT", expected="expected a port number 1-65535"
    )
    notify_email_from: Text | None = _setting(
        None, "the notifications' From address", "--notify-email-from", "ADDRESS"
    )
    notify_email_to: Annotated[tuple[str, ...], NoDecode, BeforeValidator(_checks.addresses)] = _setting(
        (), "the notifications' recipients, comma separated", "--notify-email-to", "ADDRESS[,ADDRESS]"
    )

    _TLS_IMPLIED_BY: ClassVar[tuple[str, ...]] = ("temporal_tls_cert", "temporal_tls_ca", "temporal_api_key")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments (flags), then the environment, then ``.env``."""
        return init_settings, _Environment(settings_cls), dotenv_settings

    def __init__(self, **values: Any) -> None:
        """Read the environment and ``.env`` below ``values`` (see :func:`settings_from`).

        Raises:
            ConfigurationError: One line naming the first malformed value's variable (or, for
                a keyword argument, its flag when :func:`settings_from` passed it, else its name).
        """
        try:
            super().__init__(**values)
        except ValidationError as exc:
            sources = _SOURCES.get() or {field: field for field in values}
            raise _configuration_error(exc, sources) from None

    @property
    def use_tls(self) -> bool:
        """TLS is on when asked for, or implied by client certificates, a CA or an API key."""
        implied_by = (*self._TLS_IMPLIED_BY, "temporal_tls_key")
        return self.temporal_tls or any(getattr(self, field) is not None for field in implied_by)

    @property
    def database_url_redacted(self) -> str:
        """The database URL with its password hidden, for logs."""
        try:
            return make_url(self.database_url).render_as_string(hide_password=True)
        except ArgumentError:
            return "<unparsable URL>"

    @classmethod
    def load(
        cls, args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None
    ) -> WorkerSettings:
        """Settings from parsed flags (see :func:`add_worker_arguments`), then the environment.

        Args:
            args: Parsed arguments; a flag left unset (None) falls back to the environment.
            environ: Read instead of ``os.environ`` and ``.env``.

        Raises:
            ConfigurationError: A value is malformed, missing or inconsistent.
        """
        given = {o.field: getattr(args, o.field, None) for o in OPTIONS} if args is not None else {}
        return settings_from(given, environ=environ)

    def check(self) -> WorkerSettings:
        """The checks between settings a worker needs (an application, consistent TLS).

        Raises:
            ConfigurationError: A setting is missing or contradicts another.
        """
        if not self.app:
            raise ConfigurationError(
                f"{_env('app')} is not set: name the module(s) that define your workflows, "
                f"e.g. {_env('app')}=examples.expense_approval (or {_OPTION['app'].flag})"
            )
        cert, key = self.temporal_tls_cert, self.temporal_tls_key
        if (cert is None) != (key is None):
            given, missing = ("temporal_tls_cert", "temporal_tls_key")[:: 1 if key is None else -1]
            raise ConfigurationError(f"{_env(given)} is set but {_env(missing)} is not: give both or neither")
        if (self.notify_webhook_url is None) != (self.notify_webhook_secret is None):
            given, missing = ("notify_webhook_url", "notify_webhook_secret")[
                :: 1 if self.notify_webhook_secret is None else -1
            ]
            raise ConfigurationError(f"{_env(given)} is set but {_env(missing)} is not: give both or neither")
        if self.notify_smtp_host is not None and not (self.notify_email_from and self.notify_email_to):
            raise ConfigurationError(
                f"{_env('notify_smtp_host')} needs {_env('notify_email_from')} and {_env('notify_email_to')}"
            )
        implied = [_env(f) for f in self._TLS_IMPLIED_BY if getattr(self, f) is not None]
        if "temporal_tls" in self.model_fields_set and not self.temporal_tls and implied:
            raise ConfigurationError(
                f"{_env('temporal_tls')} is false but {', '.join(implied)} need(s) TLS: "
                f"drop {_env('temporal_tls')} or set it to true"
            )
        return self

    def describe(self) -> dict[str, Any]:
        """The settings as JSON-able values, secrets hidden (for the start-up log line)."""
        out = self.model_dump(mode="json")
        out.update(app=",".join(self.app), database_url=self.database_url_redacted)
        for option in OPTIONS:
            if option.secret and out[option.field] is not None:
                out[option.field] = "***"
        return out


def _env(field: str) -> str:
    return ENV_PREFIX + field.upper()


def settings_from(
    given: Mapping[str, Any],
    *,
    environ: Mapping[str, str] | None = None,
    check: bool = True,
    flags: Mapping[str, str] | None = None,
) -> WorkerSettings:
    """Settings from values given on a command line, then the environment and ``.env``.

    Args:
        given: Values by field name (see :data:`OPTIONS`); None means "not given". Text is
            parsed as the variable's text would be; typed values are checked the same way.
        environ: Read instead of ``os.environ`` and ``.env`` (tests, the compose checks).
        check: Also make :meth:`WorkerSettings.check` (an application is named, TLS agrees).
        flags: The flag a given value came from, by field, where it is not the setting's own
            (e.g. a global ``--address`` for ``temporal_address``), for error messages.

    Raises:
        ConfigurationError: One line naming the flag or variable of a malformed value, or the
            setting that is missing or inconsistent.
    """
    values = {field: value for field, value in given.items() if value is not None}
    sources = {field: (flags or {}).get(field) or _OPTION[field].flag for field in values}
    settings = _build(values, sources, environ)
    return settings.check() if check else settings


def _build(
    values: Mapping[str, Any], sources: Mapping[str, str], environ: Mapping[str, str] | None
) -> WorkerSettings:
    environ_token, sources_token = _ENVIRON.set(environ), _SOURCES.set(sources)
    try:
        return WorkerSettings(**values, _env_file=None if environ is not None else ".env")
    finally:
        _ENVIRON.reset(environ_token)
        _SOURCES.reset(sources_token)


def _configuration_error(exc: ValidationError, sources: Mapping[str, str]) -> ConfigurationError:
    """The first error, as one line: ``<flag or variable>: <what was expected>, got <value>``."""
    error = exc.errors()[0]
    field = str(error["loc"][0]) if error["loc"] else ""
    option = _OPTION.get(field)
    source = sources.get(field) or (option.env if option else field)
    if error["type"] == "value_error":
        reason = str(error["ctx"]["error"])
    elif option and option.expected:
        reason = f"{option.expected}, got {str(error['input'])!r}"
    else:
        reason = error["msg"]
    return ConfigurationError(" ".join(f"{source}: {reason}".split()))


@dataclass(frozen=True)
class SettingOption:
    """One setting as a front end shows it (derived from ``WorkerSettings.model_fields``)."""

    field: str
    env: str
    flag: str
    help: str
    metavar: str
    default: Any
    boolean: bool
    """A yes/no setting: its flag alone means true (``--tls``), or takes a value (``--tls false``)."""
    secret: bool
    expected: str | None

    @classmethod
    def of(cls, field: str, info: FieldInfo) -> SettingOption:
        """The option of one model field."""
        extra = info.json_schema_extra
        assert isinstance(extra, dict)
        return cls(
            field=field,
            env=_env(field),
            flag=str(extra["flag"]),
            help=info.description or "",
            metavar=str(extra["metavar"]),
            default=info.default,
            boolean=isinstance(info.default, bool),
            secret=bool(extra["secret"]),
            expected=extra["expected"] if isinstance(extra["expected"], str) else None,
        )

    def parse(self, raw: str, source: str) -> Any:
        """This setting's value from ``raw`` (a flag's or a variable's text, named by ``source``).

        Raises:
            ConfigurationError: ``raw`` is malformed; the message names ``source``.
        """
        return getattr(_build({self.field: raw}, {self.field: source}, environ={}), self.field)


OPTIONS: tuple[SettingOption, ...] = tuple(
    SettingOption.of(field, info) for field, info in WorkerSettings.model_fields.items()
)
"""Every setting, in documentation order."""

_OPTION = {option.field: option for option in OPTIONS}

ENVIRONMENT_VARIABLES: frozenset[str] = frozenset(o.env for o in OPTIONS)
"""The ``DWF_*`` variables the worker reads."""


def add_worker_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add one flag per setting to ``parser`` (for ``python -m worker``).

    Every flag defaults to None, so :meth:`WorkerSettings.load` can tell "not given" (use the
    environment) from a value; values are parsed there, so errors look the same for flags and
    variables.
    """
    group = parser.add_argument_group(
        "worker settings", "Each flag overrides its environment variable (shown in brackets), which "
        "overrides a .env file in the current directory."
    )  # fmt: skip
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
