"""What a run sets up: the log digest, a quiet temporalio runtime, the shared ``Env``, databases."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bench.cpu import CpuMeter


class LogDigest:
    """A logging filter: counts warnings by logger, shows the first few of each on one line.

    Under load, attempts time out and temporalio logs each with a traceback; the count is the
    figure, the tracebacks are noise.
    """

    SHOWN = 3

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def filter(self, record: Any) -> bool:
        self.counts[record.name] += 1
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            record.msg = f"{record.getMessage()[:200]} -- {type(exc).__name__}: {exc}"
            record.args = ()
            record.exc_info = None
        return self.counts[record.name] <= self.SHOWN

    def since(self, before: Counter[str]) -> str:
        delta = self.counts - before
        return ", ".join(f"{name} x{n}" for name, n in delta.most_common()) or "none"


LOGS = LogDigest()


def quiet_runtime() -> Any:
    """A temporalio runtime whose core logs errors only: an overloaded run otherwise prints a
    "workflow task duration exceeded 5 seconds" line per slow task (the history profile has the
    durations)."""
    from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

    quiet = TelemetryFilter(core_level="ERROR", other_level="ERROR")
    return Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(filter=quiet)))


@dataclass
class Env:
    args: argparse.Namespace
    run_id: str
    cpu: CpuMeter
    plain_client: Any
    sdk_client: Any
    clock: Any


def signal_clock() -> Any:
    """A client interceptor that notes when each workflow's last signal was sent."""
    from temporalio.client import Interceptor, OutboundInterceptor, SignalWorkflowInput

    class SignalClock(Interceptor):
        def __init__(self) -> None:
            self.sent: dict[str, float] = {}

        def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
            sent = self.sent

            class Outbound(OutboundInterceptor):
                async def signal_workflow(self, input: SignalWorkflowInput) -> None:
                    sent[input.id] = time.perf_counter()
                    await super().signal_workflow(input)

            return Outbound(next)

    return SignalClock()


async def create_database(admin_url: str, name: str) -> str:
    from sqlalchemy import make_url, text

    from sdk.mirror import create_engine

    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            quoted = conn.dialect.identifier_preparer.quote(name)  # an identifier: no bind parameter
            await conn.execute(text("CREATE DATABASE " + quoted))
    finally:
        await engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def drop_database(admin_url: str, name: str) -> None:
    from sqlalchemy import text

    from sdk.mirror import create_engine

    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            quoted = conn.dialect.identifier_preparer.quote(name)
            await conn.execute(text("DROP DATABASE IF EXISTS " + quoted + " WITH (FORCE)"))
    finally:
        await engine.dispose()


async def connect_with_retry(connect: Callable[[], Awaitable[Any]], attempts: int = 20) -> Any:
    for attempt in range(attempts):
        try:
            return await connect()
        except Exception:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.25)
    raise AssertionError("unreachable")
