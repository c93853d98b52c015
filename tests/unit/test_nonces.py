"""Replay protection's memory: every signature once, bounded, and forgetting never reopens a replay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sdk._errors import Refusal
from sdk._nonces import MAX_REMEMBERED, REMEMBERED_FOR, SeenSignatures

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _signed(signature: str, at: datetime) -> dict[str, object]:
    return {"task_id": "t", "auth": {"key_id": "k", "issued_at": at.isoformat(), "signature": signature}}


def test_a_signature_is_refused_the_second_time_only() -> None:
    seen = SeenSignatures()
    seen.check(_signed("a", T0))
    seen.remember(_signed("a", T0), T0)
    with pytest.raises(Refusal, match="received before"):
        seen.check(_signed("a", T0))
    seen.check(_signed("b", T0))  # another signature, same time: a new command
    seen.check({"task_id": "t"})  # unsigned (a worker that allows them): nothing to remember


def test_old_signatures_are_forgotten_but_stay_refused() -> None:
    seen = SeenSignatures()
    seen.remember(_signed("old", T0), T0)
    later = T0 + REMEMBERED_FOR + timedelta(seconds=1)
    seen.remember(_signed("new", later), later)
    assert len(seen) == 1  # "old" is forgotten...
    with pytest.raises(Refusal):
        seen.check(_signed("old", T0))  # ...and still refused: it is below the floor


def test_memory_is_bounded_within_the_window() -> None:
    seen = SeenSignatures()
    for n in range(MAX_REMEMBERED + 50):
        at = T0 + timedelta(milliseconds=n)
        seen.remember(_signed(f"s{n}", at), at)
    assert len(seen) == MAX_REMEMBERED
    with pytest.raises(Refusal):
        seen.check(_signed("s0", T0))  # forgotten first, refused by the floor
    with pytest.raises(Refusal):
        seen.check(_signed(f"s{MAX_REMEMBERED + 49}", T0 + timedelta(milliseconds=MAX_REMEMBERED + 49)))
    seen.check(_signed("fresh", T0 + timedelta(seconds=5)))
