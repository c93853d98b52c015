"""The worker's logs: one line per record, text for people or JSON (python-json-logger).

Records from workflow or activity code carry the workflow's identity as fields:
``workflow_id``, ``run_id``, ``workflow_type``, ``step`` (the activity type, a machine step's
name), ``activity_id``, ``attempt`` and ``task_queue``. temporalio's ``workflow.logger`` and
``activity.logger`` supply them in a dict in ``extra``; for plain ``logging`` loggers called
inside a step or a workflow, :class:`LogContextFilter` looks them up in the current context.
Timestamps are UTC, ISO 8601 with milliseconds (``2026-01-31T12:00:00.123Z``).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

import temporalio.activity
import temporalio.workflow
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

__all__ = ["CONTEXT_FIELDS", "LogContextFilter", "configure_logging", "json_formatter", "text_formatter"]

CONTEXT_FIELDS = ("workflow_id", "run_id", "workflow_type", "step", "activity_id", "attempt", "task_queue")
"""The context fields, in the order the text format shows them."""

# temporalio's context dicts (flattened into CONTEXT_FIELDS) stay out of the JSON line.
_HIDDEN = ("temporal_workflow", "temporal_activity", "workflow_info", "activity_info")


# The keys of temporalio's context dicts (its loggers' ``extra``), by the field each becomes.
_WORKFLOW_KEYS = {"workflow_id": "workflow_id", "run_id": "run_id", "workflow_type": "workflow_type",
                  "attempt": "attempt", "task_queue": "task_queue"}  # fmt: skip
_ACTIVITY_KEYS = {"workflow_id": "workflow_id", "workflow_run_id": "run_id", "workflow_type": "workflow_type",
                  "activity_type": "step", "activity_id": "activity_id", "attempt": "attempt",
                  "task_queue": "task_queue"}  # fmt: skip


class LogContextFilter(logging.Filter):
    """Copies workflow and activity context onto each record as the :data:`CONTEXT_FIELDS`.

    Also sets ``context``: the fields as ``" [workflow_id=... step=...]"`` for the text format
    (empty when there are none).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        wf = getattr(record, "temporal_workflow", None)
        act = getattr(record, "temporal_activity", None)
        if act is None and wf is None:
            act, wf = _current_context()
        details: dict[str, Any] = {}
        for found, keys in ((wf, _WORKFLOW_KEYS), (act, _ACTIVITY_KEYS)):
            if isinstance(found, Mapping):
                details.update({field: found.get(key) for key, field in keys.items()})
        for key, value in details.items():
            if value is not None and getattr(record, key, None) is None:
                setattr(record, key, value)
        shown = [
            f"{key}={getattr(record, key)}"
            for key in CONTEXT_FIELDS
            if getattr(record, key, None) is not None
        ]
        record.context = f" [{' '.join(shown)}]" if shown else ""
        return True


def _current_context() -> tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]:
    """(activity dict, workflow dict) of the running code, as temporalio's loggers put in ``extra``."""
    try:
        if temporalio.activity.in_activity():
            return temporalio.activity.info()._logger_details(), None
        if temporalio.workflow.in_workflow():
            return None, temporalio.workflow.info()._logger_details()
    except Exception:  # never let logging fail because of context lookup
        pass
    return None, None


def _utc(formatter: logging.Formatter) -> logging.Formatter:
    formatter.converter = time.gmtime
    formatter.default_time_format = "%Y-%m-%dT%H:%M:%S"
    formatter.default_msec_format = "%s.%03dZ"
    return formatter


def json_formatter() -> logging.Formatter:
    """One JSON object per line: ts, level, logger, message, context fields, extras, exc."""
    return _utc(
        JsonFormatter(
            "{asctime}{levelname}{name}{message}",
            style="{",
            rename_fields={"asctime": "ts", "levelname": "level", "name": "logger", "exc_info": "exc"},
            reserved_attrs=[*RESERVED_ATTRS, *_HIDDEN, "context"],
        )
    )


def text_formatter() -> logging.Formatter:
    """``<ts> <LEVEL> <logger>: <message> [workflow_id=... step=...]`` on one line."""
    line = "%(asctime)s %(levelname)-7s %(name)s: %(message)s%(context)s"
    return _utc(logging.Formatter(line, defaults={"context": ""}))


def configure_logging(
    level: str = "INFO", fmt: str = "text", *, stream: TextIO | None = None
) -> logging.Handler:
    """Send every log record to ``stream`` (stderr) as one line of text or JSON.

    Replaces the root logger's handlers, and stops temporalio's loggers from also appending
    their context dict to the message (the formatter shows it as fields instead).

    Returns:
        The installed handler.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(json_formatter() if fmt == "json" else text_formatter())
    handler.addFilter(LogContextFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    temporalio.workflow.logger.workflow_info_on_message = False
    temporalio.activity.logger.activity_info_on_message = False
    return handler
