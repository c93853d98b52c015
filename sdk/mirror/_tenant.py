"""The query API of a client bound to one tenant: every call in that tenant, and only in it."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from sdk import PermissionDeniedError

from ._queries import MirrorQueries

__all__ = ["TenantQueries"]


class TenantQueries:
    """:class:`MirrorQueries` with ``tenant_id`` fixed to one tenant.

    ``MirrorQueries`` reads ``tenant_id=None`` as "no filter" (operators, single-tenant
    applications). A client connected with ``tenant_id="acme"`` hands out this instead, so that
    leaving the tenant out of a query never reaches another tenant's rows: every method runs
    with ``tenant_id="acme"``, and naming another tenant raises ``PermissionDeniedError``.

    Args:
        queries: The query API to scope.
        tenant_id: The tenant.
    """

    def __init__(self, queries: MirrorQueries, tenant_id: str) -> None:
        self.queries = queries
        self.tenant_id = tenant_id

    def __getattr__(self, name: str) -> Any:
        found = getattr(self.queries, name)
        if name.startswith("_") or not callable(found):
            return found
        if "tenant_id" not in inspect.signature(found).parameters:
            return found  # nothing of a tenant's to scope
        return self._scoped(found)

    def _scoped(self, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        async def call(*args: Any, tenant_id: str | None = None, **kwargs: Any) -> Any:
            if tenant_id is not None and tenant_id != self.tenant_id:
                raise PermissionDeniedError(f"this client reads tenant {self.tenant_id!r}, not {tenant_id!r}")
            return await method(*args, tenant_id=self.tenant_id, **kwargs)

        return call
