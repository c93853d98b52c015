"""Prometheus metrics: Temporal's own SDK metrics plus the worker's and the mirror's.

The ``dwf_`` families are built with ``prometheus_client`` at each scrape, from the worker's
state and ``MirrorWriter.metrics.snapshot()``, and rendered in the Prometheus text format.
Temporal's Rust core exports its own metrics (task slots, poll and schedule-to-start latencies,
activity and workflow outcomes, ...) on an HTTP port of its own: the worker binds that exporter
to a free loopback port and appends its page after the ``dwf_`` families (the names never
overlap), so one scrape target has everything and the exporter is never reachable from outside
the host.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

if TYPE_CHECKING:
    from ._failing import FailingTask

__all__ = [
    "CONTENT_TYPE",
    "failing_families",
    "CORE_LOGGER",
    "MIRROR_METRICS",
    "create_runtime",
    "mirror_families",
    "render_metrics",
    "scrape_sdk_metrics",
]

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
"""The ``/metrics`` page's type: the text format the core's exporter speaks too."""

CORE_LOGGER = "temporalio.core"
"""The Python logger Temporal's Rust core logs are forwarded to (so they share our format)."""

logger = logging.getLogger("dwf.worker")

_LOOPBACK = "127.0.0.1"
_NAME_RE = re.compile(r"[^a-zA-Z0-9_]")
_LAG = "dwf_mirror_lag_seconds"
_QUANTILE_RE = re.compile(r"^lag_seconds_p(\d+(?:\.\d+)?)$")

MIRROR_METRICS: Mapping[str, str] = {
    "rows_written": "Rows the SQL mirror wrote (upserts).",
    "write_failures": "Mirror writes that failed (and were retried).",
    "unstorable_values": "Values no database stores alike (NUL, NaN, ...), written replaced.",
    "unwritable_batches": "Event batches the database refused for good, written in part and reported.",
    "dropped_writes": "Statements of unwritable batches that were dropped (see dwf mirror audit).",
    "batches": "Event batches the SQL mirror committed.",
    "lag_seconds_max": "Largest recent lag, in seconds.",
}
"""Help text of the known keys of ``MirrorWriter.metrics.snapshot()`` (without ``_total``).

Every numeric key is exported: ``rows_written``, ``write_failures`` (also ``failures``) and
``batches`` as counters ``dwf_mirror_<key>_total`` (with or without ``_total`` in the
snapshot); the lag summary ``dwf_mirror_lag_seconds`` from ``lag_seconds_count``,
``lag_seconds_sum`` and ``lag_seconds_p<N>`` (quantile N%, e.g. ``lag_seconds_p99``); any other
key as ``dwf_mirror_<key>``, a counter if it ends in ``_total``, else a gauge.
"""

_COUNTERS = ("rows_written", "write_failures", "batches")
_ALIASES = {"failures": "write_failures"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_LOOPBACK, 0))
        return int(sock.getsockname()[1])


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


def mirror_families(snapshot: Mapping[str, float]) -> Iterator[Metric]:
    """The mirror's ``snapshot()`` as metric families (see :data:`MIRROR_METRICS`)."""
    lag = SummaryMetricFamily(_LAG, "Seconds from an event in the workflow to its row in the mirror.")
    for key, value in sorted(snapshot.items()):
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        base = key.removesuffix("_total")
        base = _ALIASES.get(base, base)
        name = "dwf_mirror_" + _NAME_RE.sub("_", base)
        help_text = MIRROR_METRICS.get(base, f"Mirror metric {key}.")
        if match := _QUANTILE_RE.match(key):
            lag.add_sample(_LAG, {"quantile": str(float(match[1]) / 100)}, value)
        elif key in ("lag_seconds_count", "lag_seconds_sum"):
            lag.add_sample(f"{_LAG}_{key.rsplit('_', 1)[1]}", {}, value)
        elif key != base or base in _COUNTERS:
            yield CounterMetricFamily(name, help_text, value=value)
        else:
            yield GaugeMetricFamily(name + ("_last" if name == _LAG else ""), help_text, value=value)
    if lag.samples:
        yield lag


_MAX_FAILING_SERIES = 100
"""Instances listed by name in ``dwf_workflow_task_failing`` (the count has them all)."""


def failing_families(failing: Sequence[FailingTask]) -> Iterator[Metric]:
    """``dwf_workflow_tasks_failing`` and, per instance, ``dwf_workflow_task_failing``."""
    yield GaugeMetricFamily(
        "dwf_workflow_tasks_failing",
        "Instances whose workflow task failed on this worker and has not succeeded since.",
        value=len(failing),
    )
    each = GaugeMetricFamily(
        "dwf_workflow_task_failing",
        "Failed attempts of a failing workflow task seen by this worker, per instance.",
        labels=["workflow_id", "run_id", "workflow_type"],
    )
    for task in list(failing)[:_MAX_FAILING_SERIES]:
        each.add_metric([task.workflow_id, task.run_id, task.workflow_type], task.failures)
    yield each


class _Families(Collector):
    """A fixed list of families, for ``generate_latest``."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


def render_metrics(
    *,
    worker_up: bool,
    info: Mapping[str, str],
    mirror_snapshot: Mapping[str, float] | None = None,
    sdk_metrics: str | None = None,
    failing: Sequence[FailingTask] = (),
) -> str:
    """The whole ``/metrics`` page (Prometheus text format).

    Args:
        worker_up: The Temporal worker is polling (``dwf_worker_up``).
        info: Labels of ``dwf_worker_info`` (task queue, namespace, ...).
        mirror_snapshot: ``MirrorWriter.metrics.snapshot()``, when there is a mirror.
        sdk_metrics: The Temporal core exporter's page, when it answered.
        failing: The instances whose workflow task is failing on this worker.
    """
    families: list[Metric] = [
        GaugeMetricFamily("dwf_worker_up", "1 while the worker polls its task queue.", value=worker_up),
        InfoMetricFamily("dwf_worker", "The worker's settings, as labels.", value=dict(info)),
        GaugeMetricFamily(
            "dwf_mirror_enabled",
            "1 when the worker writes the SQL mirror.",
            value=mirror_snapshot is not None,
        ),
        GaugeMetricFamily(
            "dwf_temporal_sdk_metrics_up",
            "1 when Temporal's SDK metrics were read.",
            value=sdk_metrics is not None,
        ),
    ]
    families += failing_families(failing)
    if mirror_snapshot is not None:
        families += mirror_families(mirror_snapshot)
    page = generate_latest(_Families(families)).decode("utf-8")
    if sdk_metrics:
        page += sdk_metrics if sdk_metrics.endswith("\n") else sdk_metrics + "\n"
    return page
