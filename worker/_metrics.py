"""Prometheus metrics: Temporal's own SDK metrics plus the worker's and the mirror's.

Temporal's Rust core exports its metrics (task slots, poll and schedule-to-start latencies,
activity and workflow outcomes, ...) in Prometheus format on an HTTP port of its own. The
worker binds that exporter to a free loopback port and relays its page inside our
``/metrics``, after the ``dwf_`` families rendered here, so one scrape target has everything
and the exporter is never reachable from outside the host.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import socket
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping

from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

__all__ = [
    "MIRROR_METRICS",
    "CORE_LOGGER",
    "create_runtime",
    "render_metrics",
    "render_mirror_metrics",
    "scrape_sdk_metrics",
]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


logger = logging.getLogger("dwf.worker")

CORE_LOGGER = "temporalio.core"
"""The Python logger Temporal's Rust core logs are forwarded to (so they share our format)."""

_LOOPBACK = "127.0.0.1"
_NAME_RE = re.compile(r"[^a-zA-Z0-9_]")

MIRROR_METRICS: Mapping[str, tuple[str, str, str]] = {
    "rows_written": ("dwf_mirror_rows_written_total", "counter", "Rows the SQL mirror wrote (upserts)."),
    "failures": (
        "dwf_mirror_write_failures_total",
        "counter",
        "Mirror writes that failed (and were retried).",
    ),
    "lag_seconds_max": ("dwf_mirror_lag_seconds_max", "gauge", "Largest recent lag, in seconds."),
}
"""Known keys of ``MirrorWriter.metrics.snapshot()``: key -> (name, type, help).

A key also matches with a ``_total`` suffix (``rows_written_total``), and ``failures`` as
``write_failures``. The lag summary ``dwf_mirror_lag_seconds`` comes from the keys
``lag_seconds_count``, ``lag_seconds_sum`` and ``lag_seconds_p<N>`` (quantile N%, e.g.
``lag_seconds_p99``). Any other numeric key is exported as ``dwf_mirror_<key>``: a counter
if it ends in ``_total``, else a gauge.
"""

_ALIASES = {"write_failures": "failures"}
_LAG = "dwf_mirror_lag_seconds"
_QUANTILE_RE = re.compile(r"^lag_seconds_p(\d+(?:\.\d+)?)$")


def create_runtime(*, prometheus: bool, attempts: int = 5) -> tuple[Runtime, str | None]:
    """A temporalio ``Runtime`` whose core logs go to Python logging, with metrics if asked.

    Args:
        prometheus: Start the core's Prometheus exporter on a free loopback port.
        attempts: Ports to try when another process takes the chosen one first.

    Returns:
        The runtime, and the exporter's ``/metrics`` URL (None without ``prometheus``).
    """
    logging_config = LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
        forwarding=LogForwardingConfig(logger=logging.getLogger(CORE_LOGGER), append_target_to_name=False),
    )
    if not prometheus:
        return Runtime(telemetry=TelemetryConfig(logging=logging_config)), None
    for attempt in range(1, attempts + 1):
        address = f"{_LOOPBACK}:{free_port()}"
        try:
            runtime = Runtime(
                telemetry=TelemetryConfig(
                    logging=logging_config, metrics=PrometheusConfig(bind_address=address)
                )
            )
        except ValueError as exc:
            # Port taken between free_port() and the exporter's bind: pick another.
            if attempt == attempts:
                raise
            logger.debug("Temporal metrics exporter could not bind %s: %s", address, exc)
            continue
        return runtime, f"http://{address}/metrics"
    raise AssertionError("unreachable")


async def scrape_sdk_metrics(url: str, timeout: float = 3.0) -> str | None:
    """The core exporter's page, or None (logged) if it does not answer."""

    def fetch() -> str:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body: bytes = response.read()
            return body.decode("utf-8")

    try:
        return await asyncio.to_thread(fetch)
    except (OSError, urllib.error.URLError, ValueError) as exc:
        logger.warning("cannot read Temporal SDK metrics from %s: %s", url, exc)
        return None


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(int(value)) if float(value).is_integer() and abs(value) < 2**53 else repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _family(
    name: str, kind: str, help_text: str, samples: Iterable[tuple[str, Mapping[str, str], float]]
) -> str:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    lines += [f"{sample}{_labels(labels)} {_number(value)}" for sample, labels, value in samples]
    return "\n".join(lines) + "\n"


def _known_key(key: str) -> str | None:
    base = key.removesuffix("_total")
    base = _ALIASES.get(base, base)
    return base if base in MIRROR_METRICS else None


def render_mirror_metrics(snapshot: Mapping[str, float]) -> str:
    """The mirror's ``snapshot()`` in Prometheus text format (see :data:`MIRROR_METRICS`)."""
    out: list[str] = []
    quantiles: list[tuple[str, Mapping[str, str], float]] = []
    for key, value in sorted(snapshot.items()):
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        if (known := _known_key(key)) is not None:
            name, kind, help_text = MIRROR_METRICS[known]
            out.append(_family(name, kind, help_text, [(name, {}, float(value))]))
        elif match := _QUANTILE_RE.match(key):
            quantile = float(match[1]) / 100
            quantiles.append((_LAG, {"quantile": _number(quantile)}, float(value)))
        elif key not in ("lag_seconds_count", "lag_seconds_sum"):
            name = "dwf_mirror_" + _NAME_RE.sub("_", key)
            if name == _LAG:
                name += "_last"
            kind = "counter" if name.endswith("_total") else "gauge"
            out.append(_family(name, kind, f"Mirror metric {key}.", [(name, {}, float(value))]))
    if "lag_seconds_count" in snapshot or quantiles:
        samples = list(quantiles)
        for suffix in ("sum", "count"):
            if f"lag_seconds_{suffix}" in snapshot:
                samples.append((f"{_LAG}_{suffix}", {}, float(snapshot[f"lag_seconds_{suffix}"])))
        out.append(
            _family(
                _LAG, "summary", "Seconds from an event in the workflow to its row in the mirror.", samples
            )
        )
    return "".join(out)


def render_metrics(
    *,
    worker_up: bool,
    info: Mapping[str, str],
    mirror_snapshot: Mapping[str, float] | None = None,
    sdk_metrics: str | None = None,
) -> str:
    """The whole ``/metrics`` page.

    Args:
        worker_up: The Temporal worker is polling (``dwf_worker_up``).
        info: Labels of ``dwf_worker_info`` (task queue, namespace, ...).
        mirror_snapshot: ``MirrorWriter.metrics.snapshot()``, when there is a mirror.
        sdk_metrics: The Temporal core exporter's page, when it answered.
    """
    parts = [
        _family("dwf_worker_up", "gauge", "1 while the worker polls its task queue.", [
            ("dwf_worker_up", {}, 1.0 if worker_up else 0.0)
        ]),
        _family("dwf_worker_info", "gauge", "The worker's settings, as labels.", [
            ("dwf_worker_info", info, 1.0)
        ]),
        _family("dwf_mirror_enabled", "gauge", "1 when the worker writes the SQL mirror.", [
            ("dwf_mirror_enabled", {}, 0.0 if mirror_snapshot is None else 1.0)
        ]),
        _family("dwf_temporal_sdk_metrics_up", "gauge", "1 when Temporal's SDK metrics were read.", [
            ("dwf_temporal_sdk_metrics_up", {}, 0.0 if sdk_metrics is None else 1.0)
        ]),
    ]  # fmt: skip
    if mirror_snapshot is not None:
        parts.append(render_mirror_metrics(mirror_snapshot))
    if sdk_metrics:
        parts.append(sdk_metrics if sdk_metrics.endswith("\n") else sdk_metrics + "\n")
    return "".join(parts)
