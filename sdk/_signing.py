"""Signed commands: the application's client vouches for an identity, workers verify it.

Any holder of access to the Temporal namespace can send a signal or an update with any payload,
so workflow code believes an identity (user, groups, admin, tenant) only when the command
carries a valid signature. The client signs with an Ed25519 private key (the application's);
workers hold only the public keys, in a :class:`Keyring` keyed by key id, so a worker cannot
forge commands and keys rotate by adding a new id before retiring the old one.

A signature covers a canonical JSON message binding: the action, the workflow id and run id,
the key id, the issue time and the SHA-256 of the command's payload (identity, task id, form
data, comment, everything but the signature itself). The workflow refuses a command issued
more than ``max_age`` before its own clock (``workflow.now()``) or ``max_skew`` after it.

Key strings: ``<key id>:<base64 of the 32 raw key bytes>``; a keyring is several public key
strings separated by commas. :func:`generate_signing_key` makes a pair.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from ._errors import ErrorKind, Refusal

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "CommandAuth",
    "Keyring",
    "SigningKey",
    "generate_signing_key",
    "payload_digest",
    "signed_message",
]

AUTH_FIELD = "auth"
"""The payload field holding the :class:`CommandAuth`."""


class CommandAuth(BaseModel):
    """The signature part of a command payload (its ``auth`` field)."""

    model_config = ConfigDict(extra="forbid")

    key_id: str
    issued_at: datetime
    run_id: str | None = None
    signature: str


def _canonical(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode()


def payload_digest(payload: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the payload's canonical JSON, its ``auth`` field left out."""
    body = {k: v for k, v in payload.items() if k != AUTH_FIELD}
    return hashlib.sha256(_canonical(body)).hexdigest()


def signed_message(
    *, action: str, workflow_id: str, run_id: str | None, key_id: str, issued_at: datetime, digest: str
) -> bytes:
    """The exact bytes a command's signature covers."""
    return _canonical(
        {
            "v": 1,
            "action": action,
            "workflow_id": workflow_id,
            "run_id": run_id or "",
            "key_id": key_id,
            "issued_at": issued_at.astimezone(UTC).isoformat(),
            "payload_sha256": digest,
        }
    )


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _split_key(text: str) -> tuple[str, bytes]:
    key_id, sep, encoded = text.strip().partition(":")
    if not sep or not key_id or not encoded:
        raise ValueError("a key is written '<key id>:<base64 key>'")
    try:
        raw = _b64decode(encoded)
    except ValueError as exc:
        raise ValueError(f"key {key_id!r} is not valid base64") from exc
    if len(raw) != 32:
        raise ValueError(f"key {key_id!r} must be 32 bytes (Ed25519), got {len(raw)}")
    return key_id, raw


class SigningKey:
    """The application's private key: the client signs every command acting as a user with it.

    Args:
        key_id: The id workers find the matching public key under.
        private_key: The Ed25519 private key.
    """

    def __init__(self, key_id: str, private_key: Ed25519PrivateKey) -> None:
        self.key_id = key_id
        self._private = private_key

    @classmethod
    def parse(cls, text: str) -> SigningKey:
        """From ``<key id>:<base64 of the 32-byte private key>``."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        key_id, raw = _split_key(text)
        return cls(key_id, Ed25519PrivateKey.from_private_bytes(raw))

    @property
    def public_key(self) -> str:
        """The matching public key string for workers' keyrings."""
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        raw = self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return f"{self.key_id}:{_b64encode(raw)}"

    def sign(
        self,
        *,
        action: str,
        workflow_id: str,
        run_id: str | None,
        payload: Mapping[str, Any],
        issued_at: datetime,
    ) -> dict[str, Any]:
        """The ``auth`` field for ``payload`` (a JSON-ready dict, as it will be sent)."""
        message = signed_message(
            action=action,
            workflow_id=workflow_id,
            run_id=run_id,
            key_id=self.key_id,
            issued_at=issued_at,
            digest=payload_digest(payload),
        )
        auth = CommandAuth(
            key_id=self.key_id,
            issued_at=issued_at.astimezone(UTC),
            run_id=run_id,
            signature=_b64encode(self._private.sign(message)),
        )
        return auth.model_dump(mode="json")

    def secret(self) -> str:
        """``<key id>:<base64>`` of the private key, as :meth:`parse` reads it (keep it secret)."""
        return private_key_string(self)

    def __repr__(self) -> str:
        return f"SigningKey({self.key_id!r})"  # never the key itself


def generate_signing_key(key_id: str) -> SigningKey:
    """A new random key pair; keep ``str`` of it secret, give workers ``.public_key``."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return SigningKey(key_id, Ed25519PrivateKey.generate())


def private_key_string(key: SigningKey) -> str:
    """``<key id>:<base64>`` of the private key (for configuration files and tests)."""
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    raw = key._private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return f"{key.key_id}:{_b64encode(raw)}"


class Keyring:
    """The public keys a worker verifies commands with.

    Args:
        keys: Public key strings (``<key id>:<base64>``) or a mapping key id → public key.
        allow_unsigned: Accept commands without a signature, trusting the identity they claim.
            For development only: anyone with namespace access could then act as anyone.
        max_age: How long after it was signed a command is accepted.
        max_skew: How far in the future (a client's clock ahead) an issue time may be.
    """

    def __init__(
        self,
        keys: Iterable[str] | Mapping[str, Ed25519PublicKey] = (),
        *,
        allow_unsigned: bool = False,
        max_age: timedelta = timedelta(minutes=5),
        max_skew: timedelta = timedelta(minutes=1),
    ) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        self._keys: dict[str, Ed25519PublicKey] = {}
        if isinstance(keys, Mapping):
            self._keys.update(keys)
        else:
            for text in keys:
                key_id, raw = _split_key(text)
                if key_id in self._keys:
                    raise ValueError(f"key id {key_id!r} appears twice in the keyring")
                self._keys[key_id] = Ed25519PublicKey.from_public_bytes(raw)
        self.allow_unsigned = allow_unsigned
        self.max_age = max_age
        self.max_skew = max_skew

    @classmethod
    def parse(cls, text: str, *, allow_unsigned: bool = False) -> Keyring:
        """From comma-separated public key strings (a ``DWF_COMMAND_KEYS`` value)."""
        return cls([part for part in text.split(",") if part.strip()], allow_unsigned=allow_unsigned)

    @property
    def key_ids(self) -> list[str]:
        """The ids of the keys held."""
        return sorted(self._keys)

    def verify(self, *, action: str, workflow_id: str, run_id: str, payload: Any, now: datetime) -> None:
        """Raise :class:`sdk.Refusal` (kind UNAUTHENTICATED) unless the command is signed here.

        Deterministic: the outcome depends only on the arguments and the keys held.
        """
        raw_auth = payload.get(AUTH_FIELD) if isinstance(payload, dict) else None
        if raw_auth is None:
            if self.allow_unsigned:
                return
            raise _unauthenticated("the command is not signed (this worker accepts signed commands only)")
        try:
            auth = CommandAuth.model_validate(raw_auth)
        except ValidationError:
            raise _unauthenticated("malformed signature field") from None
        public = self._keys.get(auth.key_id)
        if public is None:
            raise _unauthenticated(f"unknown signing key {auth.key_id!r}")
        if auth.run_id is not None and auth.run_id != run_id:
            raise _unauthenticated("the command was signed for another run")
        issued_at = auth.issued_at if auth.issued_at.tzinfo else auth.issued_at.replace(tzinfo=UTC)
        if issued_at < now - self.max_age:
            raise _unauthenticated(f"the command was signed {now - issued_at} ago (limit {self.max_age})")
        if issued_at > now + self.max_skew:
            raise _unauthenticated("the command's issue time is in the future")
        try:
            message = signed_message(
                action=action,
                workflow_id=workflow_id,
                run_id=auth.run_id,
                key_id=auth.key_id,
                issued_at=issued_at,
                digest=payload_digest(payload),
            )
            public.verify(_b64decode(auth.signature), message)
        except Exception:  # InvalidSignature, bad base64, a payload JSON cannot encode
            raise _unauthenticated("the signature does not match the command") from None


def _unauthenticated(message: str) -> Refusal:
    return Refusal(ErrorKind.UNAUTHENTICATED, message)
