"""The local activity that tells a workflow who stands in for absent users.

Workflow code calls it when it creates a task naming users (an assignee, listed voters); its
answer is recorded in the history, so a replay hands the task to the same substitutes without
reading the table again. Without a mirror there is no delegation table: nobody stands in.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from temporalio import activity

from sdk.protocol import DELEGATION_ACTIVITY

if TYPE_CHECKING:
    from sdk.mirror import DelegationStore

__all__ = ["substitutes_activity"]


def substitutes_activity(store: DelegationStore | None) -> Any:
    """The ``dwf.find_substitutes`` activity reading ``store`` (None: no delegations)."""

    @activity.defn(name=DELEGATION_ACTIVITY)
    async def find_substitutes(request: dict[str, Any]) -> dict[str, Any]:
        if store is None:
            return {"substitutes": {}}
        users = [str(user) for user in request.get("users") or []]
        at = datetime.fromisoformat(str(request["at"]))
        tenant = request.get("tenant_id")
        found = await store.substitutes(None if tenant is None else str(tenant), users, at)
        return {"substitutes": found}

    return find_substitutes
