"""The figures a benchmark run produces: targets, statistics, and the result records."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

TARGET_RATIO = 1.5  # SDK throughput over plain temporalio's (listing through visibility)
TARGET_CPU_RATIO = 1.2  # the SDK's Python CPU per instance over plain's, at most
TARGET_LAG_P95 = 0.050  # at a steady 4 instances/s
TARGET_QUERY_P95 = 0.005
DBOS_RATIO = 2.4  # DBOS 3.4 over plain temporalio, measured on this machine (issue 13)
POLL_FIRST, POLL_FACTOR, POLL_CAP = 0.1, 1.5, 0.25  # per-driver polling of a Temporal query
PROBE_INTERVAL = 0.005  # end-to-end probes at light load
PROBE_INTERVAL_LOADED = 0.1  # during the throughput run, where lags are seconds: the probe costs CPU
TENANT = "bench"
APPROVER, APPROVER_GROUPS = "maria", ["managers"]


def quantile(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile (nan for no values)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def ms(seconds: float) -> str:
    return "     -" if math.isnan(seconds) else f"{seconds * 1000:6.1f}"


def p50_p95(values: Sequence[float]) -> str:
    return f"{ms(quantile(values, 0.5))} / {ms(quantile(values, 0.95))} ms (n={len(values)})"


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def loadavg() -> str:
    """The machine's load average (1, 5, 15 minutes), from /proc/loadavg."""
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def verdict(ok: bool | None) -> str:
    return "n/a " if ok is None else ("PASS" if ok else "MISS")


@dataclass
class ThroughputResult:
    name: str
    instances: int
    wall: float = math.nan
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    cpu: str = ""
    cpu_ms: tuple[float, float, float] = (math.nan, math.nan, math.nan)
    profile: str = ""
    waits: list[float] = field(default_factory=list)
    approval_done: list[float] = field(default_factory=list)  # approval sent -> result
    note: str = ""
    logs: str = ""
    load: str = ""  # /proc/loadavg at the end of the run

    @property
    def throughput(self) -> float:
        done = len(self.latencies)
        return done / self.wall if self.wall and done else math.nan


@dataclass
class LagSample:
    """Mirror figures over one phase."""

    metric: list[float] = field(default_factory=list)
    by_kind: dict[str, list[float]] = field(default_factory=dict)
    e2e: list[float] = field(default_factory=list)
    batch_write: list[float] = field(default_factory=list)
    attempt_write: list[float] = field(default_factory=list)
    temporal_queueing: list[float] = field(default_factory=list)  # workflow-task schedule-to-start

    @property
    def queueing(self) -> list[float]:
        """The mirror's own time per write: from the writer's call to the commit (its group
        commit's queue and the transaction), for event batches and step attempts alike."""
        return [*self.batch_write, *self.attempt_write]


@dataclass
class MirrorResult:
    load: LagSample = field(default_factory=LagSample)
    light: LagSample = field(default_factory=LagSample)
    light_instances: int = 0
    poller: str = ""


@dataclass
class QueryResult:
    rows: int = 0
    seed_seconds: float = math.nan
    inbox: list[float] = field(default_factory=list)
    pending: list[float] = field(default_factory=list)
    inbox_rows: list[int] = field(default_factory=list)
    pending_rows: list[int] = field(default_factory=list)
    inbox_sql: list[float] = field(default_factory=list)  # of which inside the database driver
    pending_sql: list[float] = field(default_factory=list)
    inbox_statements: list[int] = field(default_factory=list)
    pending_statements: list[int] = field(default_factory=list)
    explain: list[str] = field(default_factory=list)


@dataclass
class ConfigResult:
    throughput: ThroughputResult
    mirror: MirrorResult | None = None
    queries: QueryResult | None = None
