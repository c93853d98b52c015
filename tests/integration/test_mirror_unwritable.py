"""What workflows produce that a database cannot store never jams the mirror (both databases).

A machine step returns NUL bytes, NaN and numbers out of range: the rows hold the same
replacements on SQLite and PostgreSQL, the writer reports them, and the audit is clean. A batch
the database refuses for good (here a trigger refusing one instance's step row, as a constraint
would) is written in part and reported, next to healthy batches that are written whole; the
instance goes on, the writer closes without waiting on it, and the audit names what is missing.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.worker import Worker

from sdk import WorkflowClient
from sdk.mirror import MirrorWriter, audit
from sdk.runtime import REPLACEMENT
from tests.integration.support import STEPS, Eventually, fetch, instance_row, step_rows
from tests.workflows import storing
from tests.workflows.storing import Produce

DEFINITIONS = (storing.storing,)

_SQLITE_GUARD = [
    f"CREATE TRIGGER poison_{event} BEFORE {event} ON workflow_step_executions "
    "WHEN NEW.output_data LIKE '%poison%' BEGIN SELECT RAISE(ABORT, 'poisoned row'); END"
    for event in ("INSERT", "UPDATE")
]
_POSTGRESQL_GUARD = [
    "CREATE FUNCTION poison_guard() RETURNS trigger AS $$ BEGIN "
    "IF NEW.output_data::text LIKE '%poison%' THEN "
    "RAISE EXCEPTION 'poisoned row' USING ERRCODE = 'check_violation'; END IF; "
    "RETURN NEW; END $$ LANGUAGE plpgsql",
    "CREATE TRIGGER poison_guard BEFORE INSERT OR UPDATE ON workflow_step_executions "
    "FOR EACH ROW EXECUTE FUNCTION poison_guard()",
]


@pytest.fixture(name="guarded", scope="module")
async def fixture_guarded(db: AsyncEngine, backend: str) -> None:
    """A trigger that refuses any step row whose output mentions "poison" (a permanent refusal)."""
    async with db.begin() as conn:
        for statement in _SQLITE_GUARD if backend == "sqlite" else _POSTGRESQL_GUARD:
            await conn.execute(text(statement))


@pytest.fixture(name="running", scope="module")
async def fixture_running(worker: Worker, guarded: None) -> AsyncIterator[Worker]:
    yield worker


async def test_unstorable_step_output_is_stored_replaced_alike_on_both_databases(
    client: WorkflowClient,
    running: Worker,
    writer: MirrorWriter,
    db: AsyncEngine,
    assert_eventually: Eventually,
) -> None:
    before = writer.metrics.unstorable
    handle = await client.start(storing.storing, Produce(text="odd"), task_queue=running.task_queue)
    assert await handle.result() == "odd"

    async def stored() -> Any:
        assert (await instance_row(db, handle))["status"] == "COMPLETED"
        (step,) = await step_rows(db, handle)
        assert step["status"] == "SUCCEEDED" and step["output_data"] is not None
        return step

    step = await assert_eventually(stored, timeout=20)
    # NaN travels to the workflow as JSON null; the rest as the writer replaced it.
    assert step["output_data"] == {
        "text": "odd",
        "nul": f"a{REPLACEMENT}b",
        "ratio": None,
        "huge": "1e+308",
        "big": str(2**70),
    }
    assert writer.metrics.unstorable > before
    report = await audit(client.temporal, writer, [handle.id])
    assert report.clean, report.mismatches


async def test_a_poisoned_batch_is_reported_and_the_healthy_ones_are_written(
    client: WorkflowClient,
    running: Worker,
    writer: MirrorWriter,
    db: AsyncEngine,
    assert_eventually: Eventually,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="dwf.mirror")
    unwritable, dropped = writer.metrics.unwritable, writer.metrics.dropped
    specs = [Produce(text=f"fine-{n}", odd=False) for n in range(4)]
    specs.insert(2, Produce(text=f"poison-{uuid.uuid4().hex[:6]}", odd=False))
    handles = await asyncio.gather(
        *(client.start(storing.storing, s, task_queue=running.task_queue) for s in specs)
    )
    # Every instance goes on: the refused batch is not retried forever.
    assert await asyncio.gather(*(h.result() for h in handles)) == [s.text for s in specs]
    poisoned = handles[2]
    healthy = [h for h in handles if h is not poisoned]

    async def reported() -> None:
        assert writer.metrics.unwritable > unwritable
        assert writer.metrics.dropped > dropped
        for handle in handles:
            assert (await instance_row(db, handle))["status"] == "COMPLETED"

    await assert_eventually(reported, timeout=20)
    lines = [r.getMessage() for r in caplog.records if "refused a batch" in r.getMessage()]
    assert lines and all(poisoned.id in line for line in lines), lines
    assert "workflow_step_executions" in lines[0]
    for handle in healthy:
        (step,) = await step_rows(db, handle)
        assert step["status"] == "SUCCEEDED"
    report = await audit(client.temporal, writer, [h.id for h in healthy])
    assert report.clean, report.mismatches
    report = await audit(client.temporal, writer, [poisoned.id])
    missing = {(m.table, m.column) for m in report.mismatches}
    assert missing and all(table == "workflow_step_executions" for table, _ in missing), missing
    assert writer._commit.backlog == 0  # nothing held back: closing does not wait on it
    assert not await fetch(db, STEPS, STEPS.c.output_data.is_(None), STEPS.c.workflow_id == healthy[0].id)
