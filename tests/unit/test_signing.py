"""Signed commands: what a signature binds, and what a keyring refuses (no server needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sdk import ErrorKind, Keyring, SigningKey, generate_signing_key
from sdk._errors import Refusal
from sdk._signing import private_key_string

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
KEY = generate_signing_key("k1")
PAYLOAD = {"task_id": "t-1", "user": "bob", "groups": ["clerks"], "admin": False, "data": {"ok": True}}


def _signed(payload: dict[str, Any] = PAYLOAD, **overrides: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "action": "complete",
        "workflow_id": "wf-1",
        "run_id": "run-1",
        "issued_at": NOW,
    }
    options.update(overrides)
    key = options.pop("key", KEY)
    return {**payload, "auth": key.sign(payload=payload, **options)}


def _verify(payload: Any, keyring: Keyring | None = None, **overrides: Any) -> None:
    options: dict[str, Any] = {"action": "complete", "workflow_id": "wf-1", "run_id": "run-1", "now": NOW}
    options.update(overrides)
    (keyring or Keyring([KEY.public_key])).verify(payload=payload, **options)


def test_a_signed_command_verifies_and_survives_a_json_round_trip() -> None:
    import json

    _verify(_signed())
    _verify(json.loads(json.dumps(_signed())))
    _verify(_signed(run_id=None))  # bound to the workflow id only (a client without the run id)


@pytest.mark.parametrize(
    ("payload", "overrides", "message"),
    [
        (PAYLOAD, {}, "not signed"),
        (_signed(), {"action": "claim"}, "does not match"),
        (_signed(), {"workflow_id": "wf-2"}, "does not match"),
        (_signed(), {"run_id": "run-2"}, "another run"),
        ({**_signed(), "admin": True}, {}, "does not match"),
        ({**_signed(), "groups": ["admins"]}, {}, "does not match"),
        ({**_signed(), "data": {"ok": False}}, {}, "does not match"),
        (_signed(key=generate_signing_key("k1")), {}, "does not match"),
        (_signed(key=generate_signing_key("k9")), {}, "unknown signing key 'k9'"),
        (_signed(issued_at=NOW - timedelta(minutes=6)), {}, "ago"),
        (_signed(issued_at=NOW + timedelta(minutes=2)), {}, "future"),
        ({**PAYLOAD, "auth": {"key_id": "k1"}}, {}, "malformed"),
        ({**PAYLOAD, "auth": "garbage"}, {}, "malformed"),
        ({**_signed(), "auth": {**_signed()["auth"], "signature": "!!"}}, {}, "does not match"),
        ("not an object", {}, "not signed"),
    ],
)
def test_what_a_keyring_refuses(payload: Any, overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(Refusal, match=message) as refused:
        _verify(payload, **overrides)
    assert refused.value.kind is ErrorKind.UNAUTHENTICATED


def test_a_keyring_holds_several_keys_for_rotation() -> None:
    new = generate_signing_key("k2")
    both = Keyring.parse(f"{KEY.public_key}, {new.public_key}")
    assert both.key_ids == ["k1", "k2"]
    _verify(_signed(), both)
    _verify(_signed(key=new), both)
    with pytest.raises(Refusal, match="unknown signing key 'k1'"):
        _verify(_signed(), Keyring([new.public_key]))


def test_unsigned_commands_pass_only_where_explicitly_allowed() -> None:
    with pytest.raises(Refusal):
        _verify(PAYLOAD, Keyring())
    _verify(PAYLOAD, Keyring(allow_unsigned=True))
    # A signature, when present, is still checked.
    with pytest.raises(Refusal):
        _verify({**_signed(), "admin": True}, Keyring([KEY.public_key], allow_unsigned=True))


def test_key_strings_round_trip_and_bad_ones_are_refused() -> None:
    text = private_key_string(KEY)
    again = SigningKey.parse(text)
    assert (again.key_id, again.public_key) == ("k1", KEY.public_key)
    assert "k1" in repr(KEY) and text.split(":")[1] not in repr(KEY)
    for bad in ("nokey", "k1:", ":abc", "k1:!!!", "k1:YWJj"):
        with pytest.raises(ValueError):
            Keyring([bad])
    with pytest.raises(ValueError, match="twice"):
        Keyring([KEY.public_key, KEY.public_key])


def test_dwf_dev_shares_one_key_between_its_worker_and_other_terminals() -> None:
    from sdk.runtime import dev_signing_key

    env: dict[str, str] = {}
    private = dev_signing_key(env)
    assert private is not None and env["DWF_SIGNING_KEY"] == private
    assert env["DWF_COMMAND_KEYS"] == SigningKey.parse(private).public_key
    assert dev_signing_key(env) is None  # configured now: left alone
    mine = {"DWF_SIGNING_KEY": private_key_string(KEY)}
    assert dev_signing_key(mine) == private_key_string(KEY)
    assert mine["DWF_COMMAND_KEYS"] == KEY.public_key
    assert dev_signing_key({"DWF_ALLOW_UNSIGNED_COMMANDS": "1"}) is None
