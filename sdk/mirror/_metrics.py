"""Counters of the mirror writer, exported by the worker as ``dwf_mirror_*``."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["MirrorMetrics"]


@dataclass
class MirrorMetrics:
    """Counters the worker exports (``dwf_mirror_*``)."""

    rows_written: int = 0
    failures: int = 0
    batches: int = 0
    outage: bool = False
    """Whether the database is unavailable now (writes are queued until it returns)."""
    outages: int = 0
    """Outages seen since the writer started."""
    backlog: int = 0
    """Writes queued and not committed yet."""
    deferred: int = 0
    """Writes whose caller went on before they committed (during an outage)."""
    unstorable: int = 0
    """Values no database stores alike (NUL, NaN, ...), written replaced (``storable_copy``)."""
    unwritable: int = 0
    """Batches the database refused for good (not an outage): written in part, reported."""
    dropped: int = 0
    """Statements of those batches that were not written (``dwf mirror audit`` names their rows)."""
    lag_seconds: list[float] = field(default_factory=list)
    _max_samples: int = 10_000

    def observe_lag(self, seconds: float) -> None:
        self.lag_seconds.append(seconds)
        if len(self.lag_seconds) > self._max_samples:
            del self.lag_seconds[: -self._max_samples // 2]

    def snapshot(self) -> dict[str, float]:
        """Current values: totals, and lag quantiles over recent samples."""
        lags = sorted(self.lag_seconds)

        def quantile(q: float) -> float:
            return lags[min(len(lags) - 1, int(q * len(lags)))] if lags else 0.0

        return {
            "rows_written_total": float(self.rows_written),
            "write_failures_total": float(self.failures),
            "batches_total": float(self.batches),
            "outage": 1.0 if self.outage else 0.0,
            "outages_total": float(self.outages),
            "backlog": float(self.backlog),
            "deferred_writes_total": float(self.deferred),
            "unstorable_values_total": float(self.unstorable),
            "unwritable_batches_total": float(self.unwritable),
            "dropped_writes_total": float(self.dropped),
            "lag_seconds_p50": quantile(0.5),
            "lag_seconds_p95": quantile(0.95),
            "lag_seconds_count": float(len(lags)),
            "lag_seconds_sum": float(sum(lags)),
        }
