"""Escalation chains: what ``on_due=[...]`` of ``@human_step`` means, checked when declared.

A chain is a list of links applied one after the other each time the task falls due: each
:class:`Escalate` moves the task to another user and/or group and may give it a new due time;
the chain may end with ``"expire"`` or ``"complete"``, applied when the last link's due time
passes. Workflow-side and sandbox safe: plain frozen dataclasses, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from ._errors import DefinitionError

__all__ = ["ChainEnd", "ChainState", "Escalate", "EscalationChain", "escalation_chain"]

ChainEnd = Literal["expire", "complete"]
"""How a chain may end once its last escalation falls due too."""


@dataclass(frozen=True)
class Escalate:
    """One link of an escalation chain (``@human_step(on_due=[Escalate(...), ...])``).

    When the task falls due, it goes to ``to`` (a user) and/or ``to_group`` (a group): the
    link replaces the whole assignment, so a side left None is cleared (the previous assignee
    loses the task). Its claim is dropped, and it is due again ``due_in`` later (None: it
    stays overdue and the chain stops here). The move is recorded like a reassignment by ``"system"``: a
    ``HumanTaskReassigned`` event and an ``escalate`` row in ``workflow_task_assignments``.

    Attributes:
        to: The user the task goes to (None: no user).
        to_group: The group the task goes to (None: no group).
        due_in: The new due time, counted from the escalation.
        reason: The reason recorded (default ``"escalated (level N): task overdue"``).
    """

    to: str | None = None
    to_group: str | None = None
    due_in: timedelta | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        if not (self.to or self.to_group):
            raise DefinitionError("Escalate(...) needs to= (a user) or to_group= (a group)")
        for option, value in (("to", self.to), ("to_group", self.to_group), ("reason", self.reason)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise DefinitionError(f"Escalate({option}=...) must be a non-empty string, got {value!r}")
        due_in = self.due_in
        if due_in is not None and (not isinstance(due_in, timedelta) or due_in <= timedelta(0)):
            raise DefinitionError(f"Escalate(due_in=...) must be a positive timedelta, got {due_in!r}")

    def to_json(self) -> dict[str, Any]:
        """A JSON-able view, for ``workflow_definitions.definition_json``."""
        return {
            "to": self.to,
            "to_group": self.to_group,
            "due_in": None if self.due_in is None else self.due_in.total_seconds(),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class EscalationChain:
    """A validated chain: its escalation links, then what happens at the last due time.

    Attributes:
        links: The escalations, in order.
        end: ``"expire"``, ``"complete"`` or None (the task stays overdue after the last link).
    """

    links: tuple[Escalate, ...]
    end: ChainEnd | None = None

    def to_json(self) -> list[Any]:
        """A JSON-able view: the links, then the end if any."""
        return [link.to_json() for link in self.links] + ([self.end] if self.end else [])


@dataclass
class ChainState:
    """Where one task is in its chain (workflow state; changed by the deadline or a command).

    Attributes:
        level: Links applied so far.
        ended: The last due time passed (or the last link set none): nothing more happens.
        changes: Counts applied links, so the waiting step notices one applied by a command.
    """

    level: int = 0
    ended: bool = False
    changes: int = 0


def escalation_chain(value: Sequence[Any], *, has_default: bool) -> EscalationChain:
    """Check ``on_due=[...]`` and return it as an :class:`EscalationChain`.

    Raises:
        DefinitionError: Naming the fix: an empty chain, a link that is not an ``Escalate``
            before the end, a link that could never be reached, an unknown end.
    """
    items = list(value)
    if not items:
        raise DefinitionError("on_due=[] is empty: give Escalate(...) links, optionally ending with 'expire'")
    end: ChainEnd | None = None
    if isinstance(items[-1], str):
        last = items.pop()
        if last not in ("expire", "complete"):
            raise DefinitionError(f"an escalation chain ends with 'expire' or 'complete', got {last!r}")
        end = last
    if not items:
        raise DefinitionError(
            f"on_due=[{end!r}] has no escalation: write on_due={end!r} instead of a one-item list"
        )
    for position, link in enumerate(items, start=1):
        if not isinstance(link, Escalate):
            raise DefinitionError(
                f"link {position} of on_due=[...] is {link!r}: every link but the last must be "
                "sdk.Escalate(to=..., to_group=..., due_in=...); 'expire'/'complete' only end a chain"
            )
    for position, link in enumerate(items[:-1], start=1):
        if link.due_in is None:
            raise DefinitionError(
                f"Escalate link {position} has no due_in=, so the links after it could never apply: "
                "give it due_in= (when the task falls due again)"
            )
    if end is not None and items[-1].due_in is None:
        raise DefinitionError(
            f"the chain ends with {end!r} but its last Escalate has no due_in=: "
            f"give it due_in= (when {end!r} applies)"
        )
    if end == "complete" and not has_default:
        raise DefinitionError("an escalation chain ending with 'complete' needs default= (the form value)")
    return EscalationChain(links=tuple(items), end=end)
