"""Machine-step workflows: retries and timeouts, with short intervals to keep tests fast."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pydantic import BaseModel
from temporalio import activity

from sdk import machine_step, workflow


class PermanentError(Exception):
    """An error the step declares non-retryable."""


class FlakyPlan(BaseModel):
    """How a flaky step behaves: ``failures`` failing attempts first, or a permanent error."""

    failures: int = 0
    permanent: bool = False


class StepReport(BaseModel):
    """What a step that finally succeeded saw."""

    attempt: int


@machine_step(
    name="tests.flaky_step",
    timeout=timedelta(seconds=5),
    max_attempts=3,
    initial_interval=timedelta(milliseconds=50),
    backoff=1.0,
    non_retryable_errors=[PermanentError],
)
async def flaky_step(plan: FlakyPlan) -> StepReport:
    """Fail the first ``plan.failures`` attempts (retried by Temporal), then succeed."""
    attempt = activity.info().attempt
    if plan.permanent:
        raise PermanentError(f"permanent failure on attempt {attempt}")
    if attempt <= plan.failures:
        raise ConnectionError(f"attempt {attempt} failed")
    return StepReport(attempt=attempt)


@workflow(name="tests.retrying", version="1.0.0")
async def retrying(plan: FlakyPlan) -> StepReport:
    return await flaky_step(plan)


@machine_step(name="tests.slow_step", timeout=timedelta(milliseconds=500), max_attempts=1)
async def slow_step(seconds: float) -> str:
    """Take ``seconds``: longer than the step's 0.5 s start-to-close timeout makes it time out."""
    await asyncio.sleep(seconds)
    return "finished"


@workflow(name="tests.slow", version="1.0.0")
async def slow(seconds: float) -> str:
    return await slow_step(seconds)


@workflow(name="tests.refuses", version="1.0.0")
async def refuses(reason: str) -> str:
    raise ValueError(reason)
