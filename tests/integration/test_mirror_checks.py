"""A client with a mirror checks task commands against the task's row, without a ``state`` query.

The row is committed before the workflow waits on its task, so a pending row is enough to
check permissions and the form before anything is sent; whatever the mirror does not show
pending in this instance is asked of the workflow, as without a mirror. On both databases.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio.client import Interceptor, OutboundInterceptor, QueryWorkflowInput, SignalWorkflowInput
from temporalio.worker import Worker

from examples.expense_approval import Approval, Expense, ExpenseOutcome, expense_approval
from sdk import (
    DevServer,
    FormValidationError,
    PermissionDeniedError,
    TaskNotFoundError,
    TaskNotPendingError,
    WorkflowClient,
)
from tests.integration.support import PendingTask

DEFINITIONS = (expense_approval,)


class CallCounter(Interceptor):
    """Counts the queries and signals a client sends, by name."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        calls = self.calls

        class Outbound(OutboundInterceptor):
            async def query_workflow(self, input: QueryWorkflowInput) -> Any:
                calls[f"query:{input.query}"] += 1
                return await super().query_workflow(input)

            async def signal_workflow(self, input: SignalWorkflowInput) -> None:
                calls[f"signal:{input.signal}"] += 1
                await super().signal_workflow(input)

        return Outbound(next)


@pytest.fixture(name="counter")
def fixture_counter() -> CallCounter:
    return CallCounter()


@pytest.fixture(name="counted_client")
async def fixture_counted_client(
    server: DevServer, database_url: str, counter: CallCounter
) -> AsyncIterator[WorkflowClient]:
    connected = await WorkflowClient.connect(server.target, database_url=database_url, interceptors=[counter])
    yield connected
    await connected.close()


async def test_a_pending_row_is_checked_without_asking_the_workflow(
    counted_client: WorkflowClient, counter: CallCounter, worker: Worker, pending_task: PendingTask
) -> None:
    expense = Expense(employee="ann", amount=42.0, description="lunch")
    handle = await counted_client.start(
        expense_approval, expense, task_queue=worker.task_queue, tenant_id="t1"
    )
    task = await pending_task(handle)  # polls the state query until the task shows
    counter.calls.clear()

    with pytest.raises(PermissionDeniedError):  # not a manager: refused from the row
        await handle.signal_complete_task(task.task_id, Approval(approved=True), user="bob", groups=["staff"])
    with pytest.raises(FormValidationError):
        await handle.signal_complete_task(
            task.task_id, {"approved": "perhaps"}, user="mia", groups=["managers"]
        )
    assert counter.calls == Counter(), "refused from the mirror row: nothing asked, nothing sent"

    await handle.signal_complete_task(task.task_id, Approval(approved=True), user="mia", groups=["managers"])
    assert counter.calls == Counter({"signal:complete_task": 1})
    outcome = await handle.result()
    assert isinstance(outcome, ExpenseOutcome) and outcome.status == "paid"

    # The row now shows the task completed: the workflow is asked, and says so.
    counter.calls.clear()
    with pytest.raises(TaskNotPendingError):
        await handle.signal_complete_task(
            task.task_id, Approval(approved=True), user="mia", groups=["managers"]
        )
    assert counter.calls == Counter({"query:state": 1})


async def test_what_the_mirror_does_not_show_is_asked_of_the_workflow(
    counted_client: WorkflowClient, counter: CallCounter, worker: Worker, pending_task: PendingTask
) -> None:
    expense = Expense(employee="ann", amount=42.0, description="taxi")
    handle = await counted_client.start(
        expense_approval, expense, task_queue=worker.task_queue, tenant_id="t1"
    )
    task = await pending_task(handle)
    counter.calls.clear()

    with pytest.raises(TaskNotFoundError):  # no such task anywhere
        await handle.signal_complete_task(
            uuid.uuid4(), Approval(approved=True), user="mia", groups=["managers"]
        )
    other_tenant = counted_client.get_instance(handle.id, tenant_id="t2")
    with pytest.raises(TaskNotFoundError):  # another tenant's task: not found, by the workflow too
        await other_tenant.signal_complete_task(
            task.task_id, Approval(approved=True), user="mia", groups=["managers"]
        )
    assert counter.calls == Counter({"query:state": 2})
    await handle.cancel(reason="test over", by="mia")


async def test_next_task_reads_the_mirror_rows(
    counted_client: WorkflowClient, counter: CallCounter, worker: Worker, pending_task: PendingTask
) -> None:
    expense = Expense(employee="ann", amount=64.0, description="train")
    handle = await counted_client.start(
        expense_approval, expense, task_queue=worker.task_queue, tenant_id="t1"
    )
    task = await handle.next_task(timeout=15)  # no wait before: the task does not exist yet
    assert task == await pending_task(handle)  # the row says what the workflow says
    counter.calls.clear()
    assert await handle.next_task(timeout=15) == task  # mirrored now: one SQL read, no query
    assert counter.calls == Counter()

    await handle.complete_task(task.task_id, Approval(approved=True), user="mia", groups=["managers"])
    outcome = await handle.result()
    assert isinstance(outcome, ExpenseOutcome) and outcome.status == "paid"
    counter.calls.clear()
    with pytest.raises(TaskNotFoundError, match="is COMPLETED"):  # the row says it ended
        await handle.next_task(timeout=15)
    assert counter.calls == Counter()
