"""Expense approval: validate, a manager approves or rejects, pay.

The example behind the README's demo. ``pay`` talks to a flaky bank: its first attempts for
an expense flagged ``flaky_bank`` fail, and Temporal retries them under the step's policy.

``large_expense_approval`` adds approval policies: the manager may not be the employee who
filed the claim (four eyes), and then two members of finance must approve (a quorum), neither
of them the claimant nor the manager who reviewed it; a claim above 5,000 gets top priority.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from sdk import human_step, machine_step, workflow


class Expense(BaseModel):
    """An expense claim."""

    employee: str
    amount: float = Field(gt=0)
    description: str = ""
    flaky_bank: bool = False


class Approval(BaseModel):
    """The manager's decision."""

    approved: bool
    comment: str | None = None


class ExpenseOutcome(BaseModel):
    """What the workflow returns."""

    status: str
    payment_id: str | None = None


class BankUnavailable(Exception):
    """The bank did not answer; retried."""


@machine_step(timeout=timedelta(seconds=10), max_attempts=5, initial_interval=timedelta(milliseconds=200))
async def validate_expense(expense: Expense) -> Expense:
    """Reject claims no manager should see; normalise the rest."""
    if expense.amount > 10_000:
        raise ApplicationError("amount above the 10,000 limit", type="LimitExceeded", non_retryable=True)
    return expense.model_copy(update={"employee": expense.employee.strip().lower()})


@human_step(
    form=Approval,
    assignee_group="managers",
    description=lambda expense: expense.description or None,
    due_in=timedelta(days=2),
    reminder_in=timedelta(days=1),
)
def manager_approval(expense: Expense) -> str:
    return f"Approve {expense.amount:.2f} for {expense.employee}"


@machine_step(
    timeout=timedelta(seconds=10),
    max_attempts=5,
    initial_interval=timedelta(milliseconds=200),
    backoff=1.5,
    non_retryable_errors=["LimitExceeded"],
)
async def pay_expense(expense: Expense) -> str:
    """Pay the employee; the bank fails the first two attempts of a ``flaky_bank`` claim."""
    attempt = activity.info().attempt if activity.in_activity() else 1
    if expense.flaky_bank and attempt < 3:
        raise BankUnavailable(f"bank timed out (attempt {attempt})")
    return f"pay-{expense.employee}-{int(expense.amount * 100)}"


@workflow(name="expense_approval", version="1.0.0", description="Approve and pay an expense claim.")
async def expense_approval(expense: Expense) -> ExpenseOutcome:
    expense = await validate_expense(expense)
    decision = await manager_approval(expense)
    if not decision.approved:
        return ExpenseOutcome(status="rejected")
    payment_id = await pay_expense(expense)
    return ExpenseOutcome(status="paid", payment_id=payment_id)


@human_step(
    form=Approval,
    assignee_group="managers",
    description=lambda expense: expense.description or None,
    due_in=timedelta(days=2),
    exclude_starter=True,  # four eyes: never the claimant
)
def manager_review(expense: Expense) -> str:
    return f"Review {expense.amount:.2f} for {expense.employee}"


@human_step(
    form=Approval,
    assignee_group="finance",
    quorum=2,  # two approvals; the first rejection rejects
    exclude_starter=True,
    exclude_steps=("manager_review",),  # nor the manager who reviewed it
    priority=lambda expense: 90 if expense.amount > 5_000 else 60,
)
def finance_approval(expense: Expense) -> str:
    return f"Finance: {expense.amount:.2f} for {expense.employee}"


@workflow(
    name="large_expense_approval",
    version="1.0.0",
    description="Approve a large expense: a manager, then two of finance, never the claimant.",
)
async def large_expense_approval(expense: Expense) -> ExpenseOutcome:
    expense = await validate_expense(expense)
    review = await manager_review(expense)
    if not review.approved:
        return ExpenseOutcome(status="rejected")
    board = await finance_approval(expense)  # a sdk.QuorumDecision, with every vote
    if not board.approved:
        return ExpenseOutcome(status="rejected")
    payment_id = await pay_expense(expense)
    return ExpenseOutcome(status="paid", payment_id=payment_id)
