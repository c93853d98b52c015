"""A machine step whose output no database stores as is: NUL bytes, NaN, a float out of range."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from sdk import machine_step, workflow


class Produce(BaseModel):
    """What the step returns: ``text`` as its text, plus the values no database stores alike."""

    text: str
    odd: bool = True


@machine_step(name="tests.storing.produce")
async def produce(spec: Produce) -> dict[str, Any]:
    """Return ``spec.text`` (and, when ``odd``, a NUL string, NaN and 1e308)."""
    if not spec.odd:
        return {"text": spec.text}
    return {"text": spec.text, "nul": "a\x00b", "ratio": float("nan"), "huge": 1e308, "big": 2**70}


@workflow(name="tests.storing", version="1.0.0")
async def storing(spec: Produce) -> str:
    out = await produce(spec)
    return str(out["text"])
