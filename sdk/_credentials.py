"""How a client vouches for its commands: the application's signing key and identity provider."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ._errors import PermissionDeniedError, Refusal
from ._identity import Identity, IdentityProvider
from ._policy import check_text

if TYPE_CHECKING:
    from ._signing import SigningKey

__all__ = ["CommandTrust"]


@dataclass(frozen=True)
class CommandTrust:
    """How a client vouches for its commands: the signing key and the identity provider.

    Attributes:
        signing_key: Signs every command acting as a user; None sends them unsigned (a
            worker refuses those unless it allows unsigned commands).
        identity_provider: The application's hook user → :class:`sdk.Identity`; when set,
            ``groups=``/``admin=`` are not accepted from callers.
    """

    signing_key: SigningKey | None = None
    identity_provider: IdentityProvider | None = field(default=None)

    async def identity(
        self, user: str, groups: Sequence[str] | None, admin: bool | None, tenant_id: str | None
    ) -> Identity:
        """Who acts: from the provider when there is one, else as the caller says."""
        if not user:
            raise PermissionDeniedError("a user is required")
        check = _refused(check_text, user=user)
        if check is not None:
            raise check
        if self.identity_provider is None:
            try:
                return Identity(user=user, groups=tuple(groups or ()), admin=bool(admin), tenant_id=tenant_id)
            except ValidationError as exc:
                raise PermissionDeniedError(str(exc.errors()[0]["msg"])) from None
        if groups is not None or admin is not None:
            raise PermissionDeniedError("groups and admin come from the identity provider: pass user= only")
        found = self.identity_provider(user)
        identity = await found if inspect.isawaitable(found) else found
        if not isinstance(identity, Identity) or identity.user != user:
            raise PermissionDeniedError(f"the identity provider gave no identity for user {user!r}")
        if tenant_id is not None and not identity.sees_tenant(tenant_id):
            raise PermissionDeniedError(f"user {user!r} does not belong to tenant {tenant_id!r}")
        return identity

    def sign(
        self, action: str, workflow_id: str, run_id: str | None, payload: dict[str, Any]
    ) -> dict[str, Any]:
        """``payload`` with its ``auth`` field (unchanged without a signing key)."""
        if self.signing_key is None:
            return payload
        auth = self.signing_key.sign(
            action=action,
            workflow_id=workflow_id,
            run_id=run_id,
            payload=payload,
            issued_at=datetime.now(UTC),
        )
        return {**payload, "auth": auth}


def _refused(check: Any, **fields: Any) -> Exception | None:
    try:
        check(**fields)
    except Refusal as refusal:
        return refusal.to_exception()
    return None
