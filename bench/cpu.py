"""Where the CPU went: this process, the dev server, PostgreSQL backends, the machine (Linux /proc)."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.figures import ThroughputResult, loadavg


def proc_cpu(pid: int | None, tick: float) -> float:
    """CPU seconds (user + system) of a process, from /proc (nan when unreadable)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick
    except (OSError, IndexError, ValueError):
        return math.nan


def tree_cpu(pid: int | None, tick: float) -> float:
    """CPU seconds of a process and its descendants (the dev server runs under a watchdog)."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        total += proc_cpu(current, tick)
        try:
            with open(f"/proc/{current}/task/{current}/children") as f:
                pending += [int(child) for child in f.read().split()]
        except (OSError, ValueError):
            pass
    return total


@dataclass
class CpuSnapshot:
    wall: float
    process: float
    server: float
    machine_busy: float
    machine_total: float
    backends: dict[int, float]


class CpuMeter:
    """CPU seconds of this process, of the dev server, of this run's PostgreSQL backends, and
    of the whole machine (Linux /proc)."""

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def snapshot(self, backend_pids: Sequence[int] = ()) -> CpuSnapshot:
        try:
            with open("/proc/stat") as f:
                values = [int(v) for v in f.readline().split()[1:]]
            idle = values[3] + (values[4] if len(values) > 4 else 0)
            busy, total = (sum(values) - idle) / self.tick, sum(values) / self.tick
        except (OSError, ValueError, IndexError):
            busy = total = math.nan
        return CpuSnapshot(
            time.perf_counter(),
            time.process_time(),
            tree_cpu(self.server_pid, self.tick),
            busy,
            total,
            {pid: proc_cpu(pid, self.tick) for pid in backend_pids},
        )

    @staticmethod
    def describe(result: ThroughputResult, before: CpuSnapshot, after: CpuSnapshot) -> None:
        """Set ``result.cpu`` (text) and ``result.cpu_ms`` (ms per instance: process, server,
        postgres)."""
        wall = after.wall - before.wall
        proc = after.process - before.process
        server = after.server - before.server
        busy = after.machine_busy - before.machine_busy
        total = after.machine_total - before.machine_total
        # Backends alive at the end; one that started during the run counts from zero.
        postgres = sum(
            cpu - before.backends.get(pid, 0.0) for pid, cpu in after.backends.items() if cpu == cpu
        )
        other = busy - proc - server - postgres
        n = max(result.instances, 1)
        result.cpu_ms = (proc / n * 1000, server / n * 1000, postgres / n * 1000)
        pg = f", postgres backends {postgres:4.1f} s" if after.backends else ""
        result.load = loadavg()
        result.cpu = (
            f"cpu: this process {proc:5.1f} s, dev server {server:5.1f} s{pg}"
            f" = {sum(result.cpu_ms):.0f} ms/instance; everything else on the machine "
            f"(other users) {other:5.1f} s; machine {100 * busy / total if total else math.nan:.0f}% "
            f"busy of {os.cpu_count() or 1} cores over {wall:.1f} s; load average {result.load}"
        )


async def backend_pids(engine: Any) -> list[int]:
    """PostgreSQL backends connected to this engine's database (none on SQLite)."""
    if engine.dialect.name != "postgresql":
        return []
    from sqlalchemy import text

    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"))
        return [int(row[0]) for row in rows]
