"""A changed copy of ``examples.expense_approval`` that keeps its workflow type.

It is what someone would deploy after editing a workflow without bumping its version: it
validates the expense twice. It is compiled with the SDK's compiler but never registered
(the real 1.0.0 is), and exists so the replay tests can show they catch a determinism break.
"""

from __future__ import annotations

from examples.expense_approval import (
    Expense,
    ExpenseOutcome,
    manager_approval,
    pay_expense,
    validate_expense,
)
from sdk import WorkflowDefinition
from sdk._compiler import compile_workflow


async def drifted_expense_approval(expense: Expense) -> ExpenseOutcome:
    expense = await validate_expense(expense)
    expense = await validate_expense(expense)  # the drift: one more command than recorded
    decision = await manager_approval(expense)
    if not decision.approved:
        return ExpenseOutcome(status="rejected")
    return ExpenseOutcome(status="paid", payment_id=await pay_expense(expense))


DRIFTED_DEFINITION: WorkflowDefinition[[Expense], ExpenseOutcome] = WorkflowDefinition(
    fn=drifted_expense_approval,
    name="expense_approval",
    version="1.0.0",
    description="expense_approval 1.0.0, edited in place",
    active=False,
    param_types=(Expense,),
    return_type=ExpenseOutcome,
)
DRIFTED_WORKFLOW_CLASS = compile_workflow(DRIFTED_DEFINITION)
