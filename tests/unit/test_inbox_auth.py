"""The inbox's credentials: bearer JWTs (a shared secret, JWKS public keys) and session cookies."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from starlette.requests import Request

from sdk import ALL_TENANTS, Identity
from sdk.inbox import AuthenticationError, JWTAuthenticator, SessionConfig

SECRET = "unit-tests-shared-secret-0123456789abcdef"


def _claims(**extra: Any) -> dict[str, Any]:
    return {"sub": "ann", "exp": int(time.time()) + 3600, **extra}


def _request(authorization: str | None) -> Request:
    headers = [(b"authorization", authorization.encode())] if authorization is not None else []
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})


def _rsa_jwk(kid: str) -> tuple[Any, dict[str, Any]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    return key, {**jwk, "kid": kid, "alg": "RS256", "use": "sig"}


def test_a_shared_secret_token_gives_its_identity() -> None:
    auth = JWTAuthenticator(secret=SECRET)
    encoded = jwt.encode(_claims(groups="clerks staff", tenant_id="acme", admin=True), SECRET)
    assert auth(_request(f"Bearer {encoded}")) == Identity(
        user="ann", groups=("clerks", "staff"), tenant_id="acme", admin=True
    )
    assert auth(_request(None)) is None


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (f"Bearer {jwt.encode(_claims(), 'another-secret-0123456789abcdef-xyz')}", "Signature"),
        (f"Bearer {jwt.encode(_claims(exp=int(time.time()) - 3600), SECRET)}", "expired"),
        (f"Bearer {jwt.encode({'sub': 'ann'}, SECRET)}", "exp"),
        (f"Bearer {jwt.encode({'exp': int(time.time()) + 60}, SECRET)}", "sub"),
        (f"Bearer {jwt.encode(_claims(tenant_id=ALL_TENANTS), SECRET)}", "administrator"),
        (f"Bearer {jwt.encode(_claims(), SECRET * 2, algorithm='HS512')}", "alg value is not allowed"),
        ("Bearer not-a-jwt", "invalid"),
        ("Basic YW5uOng=", "Bearer"),
    ],
)
def test_a_token_that_does_not_verify_is_refused(header: str, reason: str) -> None:
    with pytest.raises(AuthenticationError, match=reason):
        JWTAuthenticator(secret=SECRET)(_request(header))


def test_audience_and_issuer_are_checked_when_set() -> None:
    auth = JWTAuthenticator(secret=SECRET, audience="inbox", issuer="https://idp")
    good = jwt.encode(_claims(aud="inbox", iss="https://idp"), SECRET)
    assert auth.identity_from_token(good).user == "ann"
    for bad in (_claims(aud="other", iss="https://idp"), _claims(aud="inbox", iss="https://evil")):
        with pytest.raises(AuthenticationError):
            auth.identity_from_token(jwt.encode(bad, SECRET))


def test_public_keys_from_a_jwks_document_or_file(tmp_path: Path) -> None:
    first, first_jwk = _rsa_jwk("k1")
    second, second_jwk = _rsa_jwk("k2")
    document = {"keys": [first_jwk, second_jwk]}
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(document))
    for auth in (JWTAuthenticator(jwks=document), JWTAuthenticator(jwks_file=path)):
        for key, kid in ((first, "k1"), (second, "k2")):
            signed = jwt.encode(_claims(tenant_id="acme"), key, algorithm="RS256", headers={"kid": kid})
            assert auth.identity_from_token(signed) == Identity(user="ann", tenant_id="acme")
        wrong_kid = jwt.encode(_claims(), first, algorithm="RS256", headers={"kid": "k2"})
        with pytest.raises(AuthenticationError, match="Signature"):
            auth.identity_from_token(wrong_kid)
        unknown = jwt.encode(_claims(), first, algorithm="RS256", headers={"kid": "k9"})
        with pytest.raises(AuthenticationError, match="unknown key"):
            auth.identity_from_token(unknown)
        # A token signed with the shared-secret algorithm is never checked against a public key.
        with pytest.raises(AuthenticationError):
            auth.identity_from_token(jwt.encode(_claims(), SECRET, headers={"kid": "k1"}))


def test_an_authenticator_needs_exactly_one_key_source() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        JWTAuthenticator()
    with pytest.raises(ValueError, match="exactly one"):
        JWTAuthenticator(secret=SECRET, jwks={"keys": []})
    with pytest.raises(ValueError, match="32 bytes"):
        JWTAuthenticator(secret="short")


def test_session_cookies_round_trip_and_refuse_tampering_and_expiry() -> None:
    config = SessionConfig("s" * 32)
    identity = Identity(user="ann", groups=("clerks",), tenant_id="acme")
    session, cookie = config.open(identity)
    assert config.read(cookie) == session and session.identity == identity and session.csrf_token
    body, _, mac = cookie.partition(".")
    assert config.read(f"{body}x.{mac}") is None
    assert config.read(cookie.replace(body[:4], "AAAA")) is None
    assert SessionConfig("t" * 32).read(cookie) is None  # another secret
    assert (
        SessionConfig("s" * 32, max_age=-1).read(SessionConfig("s" * 32, max_age=-1).open(identity)[1])
        is None
    )
    assert config.read("garbage") is None
