"""Who acts: the identity the application vouches for, and how the client obtains it.

The application, not the caller of a client method, says who a user is: its groups, whether
it is an administrator, its tenant. The client asks an :data:`IdentityProvider` (a hook the
application passes to ``WorkflowClient.connect``), signs the identity into each command, and the
workflow believes only identities it can verify.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["ALL_TENANTS", "Identity", "IdentityProvider"]

ALL_TENANTS = "*"
"""The tenant of an administrator who acts across tenants (never implied by a missing tenant)."""


class Identity(BaseModel):
    """A user as the application knows it.

    Attributes:
        user: The user id (recorded as the actor of every change).
        groups: The groups the user belongs to (task assignment by group).
        admin: May act on any task of its tenant.
        tenant_id: The user's tenant; None only reaches instances started without a tenant,
            :data:`ALL_TENANTS` (administrators only) reaches every tenant.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    user: str = Field(min_length=1)
    groups: tuple[str, ...] = ()
    admin: bool = False
    tenant_id: str | None = None

    @model_validator(mode="after")
    def _all_tenants_needs_admin(self) -> Identity:
        if self.tenant_id == ALL_TENANTS and not self.admin:
            raise ValueError("only an administrator may act for ALL_TENANTS")
        return self

    def sees_tenant(self, tenant_id: str | None) -> bool:
        """Whether this identity may act on an instance of ``tenant_id``."""
        return (self.tenant_id == ALL_TENANTS and self.admin) or self.tenant_id == tenant_id


IdentityProvider = Callable[[str], "Identity | Awaitable[Identity]"]
"""The application's hook: user id → :class:`Identity` (may be async; raise to refuse)."""
