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

from sdk import WorkflowClient
from sdk.mirror import MirrorWriter
from tests.faults.driving import (
    Driver,
    assert_exact_rows,
    completing,
    converge,
    prove_the_check_fails,
    wait_for,
)
from tests.faults.harness import Fleet, PrivatePostgres, PrivateTemporal, figures

INSTANCES = 40
OUTAGE_SECONDS = 20.0
TEMPORAL_DOWN_SECONDS = 10.0


async def test_temporal_restarted_on_its_database_file(
    temporal: PrivateTemporal,
    fleets: Any,
    tmp_path: Path,
    mirror_writer_factory: Callable[[str], Awaitable[MirrorWriter]],
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'mirror.db'}"
    writer = await mirror_writer_factory(url)
    fleet = fleets(temporal.target, url)
    fleet.start()
    client = await WorkflowClient.connect(temporal.target, database_url=url, task_queue=fleet.task_queue)
    driver = Driver(client, writer.engine, fleet.task_queue)
    try:
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
        await converge(client, writer, driver.ids, 90)
        after_recovery = time.monotonic() - recovered
        await assert_exact_rows(writer.engine, driver.ids)
        caught = await prove_the_check_fails(client, writer, driver.ids)
        figures(
            "Temporal stopped and restarted (SQLite mirror)",
            instances=INSTANCES,
            down_s=TEMPORAL_DOWN_SECONDS,
            phantom_completions_repaired=fleet.output().count("never recorded; rebuilt"),
            converged_after_recovery_s=f"{after_recovery:.1f}",
            audit_before_rebuild="clean",
            corruptions_caught=caught,
            audit_after_rebuild="clean",
        )
    finally:
        await client.close()


async def _share(driver: Driver, share: float) -> bool:
    return bool(driver.ids) and len(driver.completed) >= share * len(driver.ids)


async def _outage_shows(fleet: Fleet) -> bool:
    (worker,) = fleet.workers
    status, body = await worker.get("/readyz")
    checks = json.loads(body).get("checks", {}) if status == 503 else {}
    unavailable = "mirror database unavailable" in str(checks.get("database", ""))
    return unavailable and await worker.metric("dwf_mirror_outage") == 1.0


async def _run_through_outage(
    temporal: PrivateTemporal,
    fleet: Fleet,
    writer: MirrorWriter,
    url: str,
    begin: Callable[[], Awaitable[None]],
    end: Callable[[], Awaitable[None]],
    case: str,
) -> None:
    fleet.start()
    client = await WorkflowClient.connect(temporal.target, database_url=url, task_queue=fleet.task_queue)
    driver = Driver(client, writer.engine, fleet.task_queue)
    try:
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
        statuses = [(await client.temporal.get_workflow_handle(w).describe()).status for w in driver.ids]
        assert all(s is not None and s.name == "COMPLETED" for s in statuses), "no instance failed"
        await converge(client, writer, driver.ids, 90)
        after_recovery = time.monotonic() - recovered
        await assert_exact_rows(writer.engine, driver.ids)
        (worker,) = fleet.workers
        output = worker.output()
        warnings = output.count("mirror database unavailable (")
        assert warnings == 1, f"one warning per outage, got {warnings}"
        assert "Traceback" not in output
        assert await worker.metric("dwf_mirror_outage") == 0.0
        assert await worker.metric("dwf_mirror_outages_total") == 1.0
        caught = await prove_the_check_fails(client, writer, driver.ids)
        figures(
            case,
            instances=INSTANCES,
            outage_s=OUTAGE_SECONDS,
            completions_answered_during_outage=during,
            failed_instances=0,
            warnings=warnings,
            converged_after_recovery_s=f"{after_recovery:.1f}",
            audit_before_rebuild="clean",
            corruptions_caught=caught,
            audit_after_rebuild="clean",
        )
    finally:
        await client.close()


@pytest.mark.postgresql  # the shared server, or its binaries for a private cluster
async def test_postgresql_mirror_down_for_20s(
    temporal: PrivateTemporal,
    fleets: Any,
    private_postgres: PrivatePostgres,
    mirror_writer_factory: Callable[[str], Awaitable[MirrorWriter]],
) -> None:
    writer = await mirror_writer_factory(private_postgres.url)
    fleet = fleets(temporal.target, private_postgres.url)

    async def stop() -> None:
        await asyncio.to_thread(private_postgres.stop)

    async def start() -> None:
        await asyncio.to_thread(private_postgres.start)

    await _run_through_outage(
        temporal, fleet, writer, private_postgres.url, stop, start, "PostgreSQL mirror stopped"
    )


async def test_sqlite_mirror_unwritable_for_20s(
    temporal: PrivateTemporal,
    fleets: Any,
    tmp_path: Path,
    mirror_writer_factory: Callable[[str], Awaitable[MirrorWriter]],
) -> None:
    path = tmp_path / "mirror.db"
    url = f"sqlite+aiosqlite:///{path}"
    writer = await mirror_writer_factory(url)
    fleet = fleets(temporal.target, url)
    lock = sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    async def lock_out_writers() -> None:
        lock.execute("BEGIN EXCLUSIVE")  # nobody else can write the file meanwhile

    async def let_them_in() -> None:
        lock.execute("ROLLBACK")

    try:
        await _run_through_outage(
            temporal, fleet, writer, url, lock_out_writers, let_them_in, "SQLite mirror locked"
        )
    finally:
        lock.close()
