"""The baseline of bench/mirror_overhead.py: the expense-approval scenario in plain temporalio.

Validate (activity), wait for an approval signal, pay (activity): the same steps, retry
policies, payloads and timer as ``examples.expense_approval`` compiled by the SDK, without the
SDK. It lives in its own small module because the workflow sandbox re-executes the module of a
workflow class for every workflow run: defined in the 1,000-line benchmark script, the baseline
paid about 45 ms of interpreter time per run for re-executing the script (measured with py-spy),
three times what ``examples/expense_approval.py`` costs the SDK.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from pydantic import BaseModel, Field
from temporalio import activity, workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ApplicationError

__all__ = [
    "AWAITING_APPROVAL",
    "PlainApproval",
    "PlainExpense",
    "PlainExpenseApproval",
    "PlainOutcome",
    "plain_pay_expense",
    "plain_validate_expense",
]


class PlainExpense(BaseModel):
    employee: str
    amount: float = Field(gt=0)
    description: str = ""
    flaky_bank: bool = False  # as in the example's Expense (unused here)
    listed: bool = False  # keep AWAITING_APPROVAL up to date (for drivers listing through visibility)


class PlainApproval(BaseModel):
    approved: bool
    comment: str | None = None


class PlainOutcome(BaseModel):
    status: str
    payment_id: str | None = None


@activity.defn(name="bench_plain.validate_expense")
async def plain_validate_expense(expense: PlainExpense) -> PlainExpense:
    if expense.amount > 10_000:
        raise ApplicationError("amount above the 10,000 limit", type="LimitExceeded", non_retryable=True)
    return expense.model_copy(update={"employee": expense.employee.strip().lower()})


@activity.defn(name="bench_plain.pay_expense")
async def plain_pay_expense(expense: PlainExpense) -> str:
    return f"pay-{expense.employee}-{int(expense.amount * 100)}"


AWAITING_APPROVAL = SearchAttributeKey.for_bool("BenchAwaitingApproval")
"""Set while an instance waits for its approval: how a plain temporalio application lists its
pending work (a visibility query), since Temporal has no table of tasks."""

_VALIDATE_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=5)
_PAY_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=1.5,
    maximum_attempts=5,
    non_retryable_error_types=["LimitExceeded"],
)


@workflow.defn(name="bench_plain_expense_approval")
class PlainExpenseApproval:
    """The same scenario as ``examples.expense_approval``, without the SDK."""

    def __init__(self) -> None:
        self.decision: PlainApproval | None = None
        self.waiting = False

    @workflow.run
    async def run(self, expense: PlainExpense) -> PlainOutcome:
        expense = await workflow.execute_activity(
            plain_validate_expense,
            expense,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=_VALIDATE_RETRY,
        )
        self.waiting = True
        if expense.listed:
            workflow.upsert_search_attributes([AWAITING_APPROVAL.value_set(True)])
        while self.decision is None:
            # The SDK's human step has reminder_in=1 day: it waits with a timer, so does this.
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: self.decision is not None, timeout=timedelta(days=1))
        self.waiting = False
        if expense.listed:
            workflow.upsert_search_attributes([AWAITING_APPROVAL.value_set(False)])
        if not self.decision.approved:
            return PlainOutcome(status="rejected")
        payment_id = await workflow.execute_activity(
            plain_pay_expense,
            expense,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=_PAY_RETRY,
        )
        return PlainOutcome(status="paid", payment_id=payment_id)

    @workflow.signal(name="approve")
    def approve(self, decision: PlainApproval) -> None:
        self.decision = decision

    @workflow.query(name="waiting_for_approval")
    def waiting_for_approval(self) -> bool:
        return self.waiting
