"""Who is calling: authenticators turn an HTTP request into an :class:`sdk.Identity`.

Identity never comes from a request's body or query: an authenticator reads a credential the
application issued (a bearer JWT it signed, a session cookie the inbox signed) and verifies it
here, where it is used. Built in: :class:`JWTAuthenticator` (HS256 with a shared secret, or
RS/ES/EdDSA public keys from a JWKS document given as data or a file, read once: no network at
run time). Any async or sync callable ``request -> Identity | None`` is an authenticator too
(the application's own hook).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jwt
from pydantic import ValidationError
from starlette.requests import Request

from sdk import Identity

__all__ = ["AuthenticationError", "Authenticator", "JWTAuthenticator", "authenticate_with"]


class AuthenticationError(Exception):
    """A credential was given but does not prove who the caller is (HTTP 401)."""


Authenticator = Callable[[Request], "Identity | Awaitable[Identity | None] | None"]
"""Request → the caller's identity; None when the request carries no credential (HTTP 401);
raise :class:`AuthenticationError` for a credential that does not verify."""


async def authenticate_with(authenticator: Authenticator, request: Request) -> Identity | None:
    """Run an authenticator (sync or async) and check what it returns."""
    found = authenticator(request)
    identity = await found if inspect.isawaitable(found) else found
    if identity is not None and not isinstance(identity, Identity):
        raise TypeError(f"an authenticator must return sdk.Identity or None, not {type(identity).__name__}")
    return identity


_ASYMMETRIC = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]


class JWTAuthenticator:
    """Verifies ``Authorization: Bearer <JWT>`` and reads the identity from its claims.

    Give exactly one of ``secret`` (HS256, a shared secret), ``jwks`` (a JWKS document: a dict
    or its JSON text) or ``jwks_file`` (a path to one). Keys are loaded when this object is
    built; verification never goes to the network.

    Args:
        secret: The shared HMAC secret (HS256).
        jwks: A JSON Web Key Set (``{"keys": [...]}``) with the issuer's public keys; a token
            names its key with ``kid`` (a set of one key needs no ``kid``).
        jwks_file: A file holding such a document.
        audience: When set, the ``aud`` claim must contain it.
        issuer: When set, the ``iss`` claim must equal it.
        algorithms: Accepted algorithms (default HS256 for a secret, the asymmetric ones for keys).
        leeway: Seconds of clock skew allowed on ``exp``/``nbf``/``iat``.
        user_claim: The claim naming the user (default ``sub``).
        groups_claim: The claim with the user's groups (a list, or a space-separated string).
        tenant_claim: The claim with the user's tenant (absent: no tenant).
        admin_claim: The claim saying the user is an administrator (``true``).
    """

    def __init__(
        self,
        *,
        secret: str | bytes | None = None,
        jwks: Mapping[str, Any] | str | None = None,
        jwks_file: str | Path | None = None,
        audience: str | None = None,
        issuer: str | None = None,
        algorithms: Sequence[str] | None = None,
        leeway: float = 30.0,
        user_claim: str = "sub",
        groups_claim: str = "groups",
        tenant_claim: str = "tenant_id",
        admin_claim: str = "admin",
    ) -> None:
        given = [x for x in (secret, jwks, jwks_file) if x is not None]
        if len(given) != 1:
            raise ValueError("JWTAuthenticator needs exactly one of secret=, jwks= or jwks_file=")
        self._secret: str | bytes | None = secret
        self._keys: dict[str | None, Any] = {}
        if secret is not None:
            if len(secret) < 32:
                raise ValueError("an HS256 secret must be at least 32 bytes long")
            self.algorithms = list(algorithms or ["HS256"])
        else:
            document: Any = jwks
            if jwks_file is not None:
                document = Path(jwks_file).read_text()
            if isinstance(document, str):
                document = json.loads(document)
            keyset = jwt.PyJWKSet.from_dict(dict(document))
            for key in keyset.keys:
                self._keys[key.key_id] = key.key
            if not self._keys:
                raise ValueError("the JWKS document holds no usable key")
            self.algorithms = list(algorithms or _ASYMMETRIC)
        self.audience = audience
        self.issuer = issuer
        self.leeway = leeway
        self.user_claim = user_claim
        self.groups_claim = groups_claim
        self.tenant_claim = tenant_claim
        self.admin_claim = admin_claim

    def _key(self, token: str) -> Any:
        if self._secret is not None:
            return self._secret
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise AuthenticationError(f"malformed token: {exc}") from None
        if kid in self._keys:
            return self._keys[kid]
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        raise AuthenticationError("the token is signed with an unknown key")

    def identity_from_token(self, token: str) -> Identity:
        """The identity a token proves.

        Raises:
            AuthenticationError: Bad signature, expired, wrong audience or issuer, or claims
                that do not make an identity.
        """
        try:
            claims = jwt.decode(
                token,
                self._key(token),
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", self.user_claim], "verify_aud": self.audience is not None},
            )
        except jwt.PyJWTError as exc:
            raise AuthenticationError(f"invalid token: {exc}") from None
        groups = claims.get(self.groups_claim) or []
        if isinstance(groups, str):
            groups = groups.split()
        try:
            return Identity(
                user=claims[self.user_claim],
                groups=tuple(groups),
                tenant_id=claims.get(self.tenant_claim),
                admin=claims.get(self.admin_claim) is True,
            )
        except (ValidationError, TypeError) as exc:
            raise AuthenticationError(f"the token's claims do not make an identity: {exc}") from None

    def __call__(self, request: Request) -> Identity | None:
        """The identity of a request's bearer token; None without an ``Authorization`` header."""
        header = request.headers.get("authorization")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("expected Authorization: Bearer <token>")
        return self.identity_from_token(token.strip())
