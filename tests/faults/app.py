"""The application the fault suite's worker processes run: an order with two machine steps
around a human approval. Steps sleep a little, so kills and outages land while they run."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pydantic import BaseModel

from sdk import human_step, machine_step, workflow

OPS = "ops"


class FaultOrder(BaseModel):
    """An order."""

    item: str


class FaultApproval(BaseModel):
    """The approver's form."""

    ok: bool


@machine_step(timeout=timedelta(seconds=5), max_attempts=50, initial_interval=timedelta(milliseconds=200))
async def faults_reserve(order: FaultOrder) -> FaultOrder:
    await asyncio.sleep(0.05)
    return order


@human_step(form=FaultApproval, assignee_group=OPS)
def faults_approve(order: FaultOrder) -> str:
    return f"Approve {order.item}"


@machine_step(timeout=timedelta(seconds=5), max_attempts=50, initial_interval=timedelta(milliseconds=200))
async def faults_ship(order: FaultOrder) -> str:
    await asyncio.sleep(0.05)
    return f"shipped-{order.item}"


@workflow(name="faults_order", version="1.0.0")
async def faults_order(order: FaultOrder) -> str:
    reserved = await faults_reserve(order)
    approval = await faults_approve(reserved)
    return await faults_ship(reserved) if approval.ok else "refused"
