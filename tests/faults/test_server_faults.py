"""Server faults: the Temporal dev server stopped mid-run and started again on its database
file, and the mirror database unavailable for about 20 s (a private PostgreSQL cluster
stopped; a SQLite file locked against writers).

An outage of the mirror must never change an outcome: every instance completes (none
fails), completions sent during it are answered truthfully, the worker logs one warning per
outage and says so on ``/readyz`` and in its metrics, and the rows catch up in order. Each
case ends with the audit clean without a rebuild, exact row counts, and proof that the check
can fail.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.faults.driving import Driver, completing, wait_for
from tests.faults.harness import FaultRun, Fleet, PrivatePostgres, PrivateTemporal, settle

INSTANCES = 40
OUTAGE_SECONDS = 20.0
TEMPORAL_DOWN_SECONDS = 10.0


async def test_temporal_restarted_on_its_database_file(
    temporal: PrivateTemporal, fault_run: Any, tmp_path: Path
) -> None:
    async with fault_run(f"sqlite+aiosqlite:///{tmp_path / 'mirror.db'}") as run:
        driver = run.driver
        async with completing(driver):
            await driver.start(INSTANCES)
            await wait_for(lambda: _share(driver, 0.3), 120, "30% of the tasks completed")
            await temporal.stop()  # completions in flight meanwhile are lost or refused
            await asyncio.sleep(TEMPORAL_DOWN_SECONDS)  # the length of the fault, not a wait
            await temporal.start()
            recovered = time.monotonic()
            try:
                await wait_for(driver.all_finished, 120, "every instance to complete")
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{await driver.unfinished()}") from None
        await settle(
            run,
            "Temporal stopped and restarted (SQLite mirror)",
            timeout=90,
            recovered=recovered,
            instances=INSTANCES,
            down_s=TEMPORAL_DOWN_SECONDS,
            phantom_completions_repaired=lambda: run.fleet.output().count("never recorded; rebuilt"),
        )


async def _share(driver: Driver, share: float) -> bool:
    return bool(driver.ids) and len(driver.completed) >= share * len(driver.ids)


async def _outage_shows(fleet: Fleet) -> bool:
    (worker,) = fleet.workers
    status, body = await worker.get("/readyz")
    checks = json.loads(body).get("checks", {}) if status == 503 else {}
    unavailable = "mirror database unavailable" in str(checks.get("database", ""))
    return unavailable and await worker.metric("dwf_mirror_outage") == 1.0


async def _run_through_outage(
    run: FaultRun,
    begin: Callable[[], Awaitable[None]],
    end: Callable[[], Awaitable[None]],
    case: str,
) -> None:
    driver, fleet = run.driver, run.fleet
    async with completing(driver):
        await driver.start(INSTANCES)
        await wait_for(lambda: _share(driver, 0.25), 120, "25% of the tasks completed")
        before = len(driver.completed)
        await begin()
        began = time.monotonic()
        await wait_for(lambda: _outage_shows(fleet), 15, "/readyz and the metrics to show the outage")
        await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - began)))  # the fault's length
        during = len(driver.completed) - before
        await end()
        recovered = time.monotonic()
        await wait_for(driver.all_finished, 240, "every instance to complete")
    statuses = [(await run.client.temporal.get_workflow_handle(w).describe()).status for w in driver.ids]
    assert all(s is not None and s.name == "COMPLETED" for s in statuses), "no instance failed"
    (worker,) = fleet.workers
    await settle(
        run,
        case,
        timeout=90,
        recovered=recovered,
        instances=INSTANCES,
        outage_s=OUTAGE_SECONDS,
        completions_answered_during_outage=during,
        failed_instances=0,
        warnings=_one_warning(worker.output()),
    )
    assert await worker.metric("dwf_mirror_outage") == 0.0
    assert await worker.metric("dwf_mirror_outages_total") == 1.0


def _one_warning(output: str) -> int:
    warnings = output.count("mirror database unavailable (")
    assert warnings == 1, f"one warning per outage, got {warnings}"
    assert "Traceback" not in output
    return warnings


@pytest.mark.postgresql  # the shared server, or its binaries for a private cluster
async def test_postgresql_mirror_down_for_20s(fault_run: Any, private_postgres: PrivatePostgres) -> None:
    async def stop() -> None:
        await asyncio.to_thread(private_postgres.stop)

    async def start() -> None:
        await asyncio.to_thread(private_postgres.start)

    async with fault_run(private_postgres.url) as run:
        await _run_through_outage(run, stop, start, "PostgreSQL mirror stopped")


async def test_sqlite_mirror_unwritable_for_20s(fault_run: Any, tmp_path: Path) -> None:
    path = tmp_path / "mirror.db"
    async with fault_run(f"sqlite+aiosqlite:///{path}") as run:
        lock = sqlite3.connect(path, isolation_level=None, check_same_thread=False)

        async def lock_out_writers() -> None:
            lock.execute("BEGIN EXCLUSIVE")  # nobody else can write the file meanwhile

        async def let_them_in() -> None:
            lock.execute("ROLLBACK")

        try:
            await _run_through_outage(run, lock_out_writers, let_them_in, "SQLite mirror locked")
        finally:
            lock.close()
