"""The inbox API's OpenAPI document, fuzzed with schemathesis, on both databases.

Marked ``fuzz`` (``-m "not fuzz"`` leaves it out). Schemathesis generates requests for every
operation of ``/api/openapi.json``, valid and invalid (``DWF_FUZZ_EXAMPLES``, default 150 per
backend, about 20 s each); half of the task ids are aimed at a real pending task (and half of
the instance ids of reads at its instance), so the actions reach the client's checks. Each
request carries a clerk's bearer token of the task's tenant.

Invariants: no answer is a server error (5xx); every error is problem details; a 4xx changed no
mirror row. After a 2xx on an unsafe method the test waits for the mirror to settle (the instance
ends once its task is completed) before the next request.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.generation.modes import GenerationMode
from sqlalchemy.ext.asyncio import AsyncEngine

from sdk import InstanceHandle, TaskStatus, WorkflowStatus
from sdk.inbox import PROBLEM_JSON
from tests.integration.inbox_support import Inbox, bearer, mirror_snapshot, open_inbox
from tests.integration.support import Eventually
from tests.workflows import lifecycle
from tests.workflows.lifecycle import CLERKS, Ticket

pytestmark = pytest.mark.fuzz

DEFINITIONS = [lifecycle.lifecycle_task]
FUZZ = settings(
    max_examples=int(os.environ.get("DWF_FUZZ_EXAMPLES", "150")),
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass
class Target:
    inbox: Inbox
    handle: InstanceHandle[Any]
    task_id: str
    headers: dict[str, str]


@pytest.fixture(name="target", scope="module")
async def fixture_target(server: Any, database_url: str, worker: Any) -> AsyncIterator[Target]:
    async with open_inbox(server.target, database_url, worker.task_queue) as inbox:
        tenant = f"fuzz-{uuid.uuid4().hex[:6]}"
        handle = await inbox.client.start(
            lifecycle.lifecycle_task, Ticket(subject="fuzz", route="group"), tenant_id=tenant
        )
        task = await handle.next_task(timeout=30)
        yield Target(inbox, handle, task.task_id, bearer("bob", groups=(CLERKS,), tenant=tenant))


def _operations() -> Any:
    """Cases for every operation of the inbox's OpenAPI document, valid and invalid."""
    from sdk import WorkflowClient
    from sdk.inbox import JWTAuthenticator, create_inbox_app

    # The document does not depend on the client's connections: a client never connected.
    offline = WorkflowClient(None, database_url="sqlite+aiosqlite:///:memory:")  # type: ignore[arg-type]
    document = create_inbox_app(offline, authenticator=JWTAuthenticator(secret="x" * 32)).openapi()
    schema = schemathesis.openapi.from_dict(document)
    return st.one_of(
        schema.as_strategy(generation_mode=GenerationMode.POSITIVE),
        schema.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )


async def _settle(target: Target, db: AsyncEngine, eventually: Eventually) -> None:
    """Wait until the mirror stops changing after an accepted command: the task's row is written
    before the command answers; a completed task ends its instance, written just after."""
    row = await target.inbox.client.queries.get_task(target.task_id)
    if row.status is TaskStatus.PENDING:
        return

    async def ended() -> None:
        instance = await target.inbox.client.queries.get_instance(row.instance_id)
        assert instance.status is WorkflowStatus.COMPLETED, instance.status
        steps = (await target.inbox.client.queries.step_history(row.instance_id)).items
        assert all(step.completed_at is not None for step in steps), steps

    await eventually(ended, timeout=30)


@FUZZ
@given(case=_operations(), aim=st.booleans())
async def test_no_server_error_and_no_changed_row_on_a_refusal(
    target: Target, db: AsyncEngine, assert_eventually: Eventually, case: Any, aim: bool
) -> None:
    if aim and case.path_parameters:
        # Task actions on the real task; the real instance only to read (a pause or cancel
        # would end the fuzzing of its task for the rest of the run).
        if "task_id" in case.path_parameters:
            case.path_parameters["task_id"] = target.task_id
        if "instance_id" in case.path_parameters and case.method.upper() == "GET":
            case.path_parameters["instance_id"] = str(target.handle.instance_id)
    request = case.as_transport_kwargs(base_url="http://inbox", headers=target.headers)
    body: dict[str, Any] = {}
    if "json" in request:
        body["json"] = request["json"]
    elif request.get("data") is not None:
        data = request["data"]
        body["content"] = data if isinstance(data, (bytes, str)) else str(data)
    before = await mirror_snapshot(db)
    response = await target.inbox.http.request(
        request["method"], request["url"], params=request.get("params"), headers=request["headers"], **body
    )
    status = response.status_code
    assert status < 500, f"{case.method} {case.formatted_path}: {status} {response.text}"
    if status >= 400:
        assert response.headers["content-type"] == PROBLEM_JSON, response.text
        assert await mirror_snapshot(db) == before, (
            f"{case.method} {case.formatted_path} changed rows: {status}"
        )
    elif case.method.upper() in _UNSAFE:
        await _settle(target, db, assert_eventually)
