"""``tests.local_order`` edited in place: its steps turned from local into regular activities.

Compiled under the same workflow type as ``tests.workflows.local.local_order`` but never
registered, in a module of its own (the compiler publishes the class under a name derived
from the type, which would replace the real one's in its module). A replay test shows that
turning ``local`` off changes the commands.
"""

from __future__ import annotations

from sdk import WorkflowDefinition
from sdk._compiler import compile_workflow
from tests.workflows.mirrored import Order, mirror_prepare, mirror_review, mirror_ship


async def local_order_turned_regular(order: Order) -> str:
    """``local_order`` edited in place to run its steps as regular activities."""
    order = await mirror_prepare(order)
    review = await mirror_review(order)
    if not review.approved:
        return "rejected"
    return await mirror_ship(order)


TURNED_REGULAR_CLASS = compile_workflow(
    WorkflowDefinition(
        fn=local_order_turned_regular,
        name="tests.local_order",
        version="1.0.0",
        description="tests.local_order 1.0.0 with regular steps, never registered",
        active=False,
        param_types=(Order,),
        return_type=str,
    )
)
"""What replaying ``local_order``'s history with regular steps meets (a replay test)."""
