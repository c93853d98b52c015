"""Worker side of signed commands: hand the keyring to workflow code, verify signals.

``worker.create_worker`` installs :class:`TrustInterceptor` (it gives each workflow run the
worker's :class:`sdk._signing.Keyring`, used by update validators) and registers
:func:`verify_activity` (the local activity that verifies a signal, its verdict recorded in
history). Neither is needed to replay a history: validators do not run on replay, and local
activity results come from the history.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from typing import Any

from temporalio import activity, workflow
from temporalio.worker import (
    ExecuteWorkflowInput,
    HandleSignalInput,
    HandleUpdateInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from ._errors import Refusal
from ._runtime import WorkflowRuntime
from ._signing import Keyring
from .protocol import VERIFY_ACTIVITY

__all__ = ["COMMAND_KEYS_ENV", "TrustInterceptor", "dev_signing_key", "keyring_from", "verify_activity"]

COMMAND_KEYS_ENV = "DWF_COMMAND_KEYS"
"""Environment variable with the workers' public keys (comma-separated ``<id>:<base64>``)."""
ALLOW_UNSIGNED_ENV = "DWF_ALLOW_UNSIGNED_COMMANDS"
"""Set to ``1`` to accept unsigned commands (development only)."""


def keyring_from(command_keys: Keyring | str | None, *, allow_unsigned: bool | None = None) -> Keyring:
    """The keyring a worker verifies with.

    ``command_keys`` may be a :class:`Keyring`, a comma-separated key string, or None: then
    ``DWF_COMMAND_KEYS`` is read. ``allow_unsigned`` None reads ``DWF_ALLOW_UNSIGNED_COMMANDS``.
    Without keys and without ``allow_unsigned`` every command acting as a user is refused: a
    worker is safe unless told otherwise.
    """
    if allow_unsigned is None:
        allow_unsigned = os.environ.get(ALLOW_UNSIGNED_ENV, "").strip().lower() in ("1", "true", "yes")
    if isinstance(command_keys, Keyring):
        if allow_unsigned:
            command_keys.allow_unsigned = True
        return command_keys
    text = command_keys if command_keys is not None else os.environ.get(COMMAND_KEYS_ENV, "")
    return Keyring.parse(text, allow_unsigned=allow_unsigned)


def dev_signing_key(environ: dict[str, str] | None = None) -> str | None:
    """For ``dwf dev``: make sure the embedded worker and this terminal's clients share a key.

    With no ``DWF_COMMAND_KEYS`` and unsigned commands not allowed, takes ``DWF_SIGNING_KEY``
    (or generates a development key) and sets both variables in ``environ`` (default
    ``os.environ``). Returns the private key string to hand to other terminals, or None when
    keys were configured already.
    """
    from ._signing import SigningKey, generate_signing_key, private_key_string

    env: Any = os.environ if environ is None else environ
    if env.get(COMMAND_KEYS_ENV) or env.get(ALLOW_UNSIGNED_ENV):
        return None
    configured = env.get("DWF_SIGNING_KEY")
    key = SigningKey.parse(configured) if configured else generate_signing_key("dev")
    env["DWF_SIGNING_KEY"] = private_key_string(key)
    env[COMMAND_KEYS_ENV] = key.public_key
    return str(env["DWF_SIGNING_KEY"])


def _bind(keyring: Keyring) -> None:
    runtime = getattr(workflow.instance(), "_dwf", None)
    if isinstance(runtime, WorkflowRuntime):
        runtime.keyring = keyring


class TrustInterceptor(Interceptor):
    """Gives every workflow run of the worker its keyring (before any handler runs).

    Args:
        keyring: The public keys the worker verifies commands with.
    """

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        keyring = self.keyring

        class _TrustInbound(WorkflowInboundInterceptor):
            async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
                _bind(keyring)
                return await super().execute_workflow(input)

            async def handle_signal(self, input: HandleSignalInput) -> None:
                _bind(keyring)
                await super().handle_signal(input)

            def handle_update_validator(self, input: HandleUpdateInput) -> None:
                _bind(keyring)
                super().handle_update_validator(input)

            async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
                _bind(keyring)
                return await super().handle_update_handler(input)

        return _TrustInbound


def verify_activity(keyring: Keyring) -> Callable[[dict[str, Any]], Any]:
    """The local activity verifying a signal's signature: ``{"ok"}`` or ``{"ok", "kind", "message"}``."""

    @activity.defn(name=VERIFY_ACTIVITY)
    async def verify_command(request: dict[str, Any]) -> dict[str, Any]:
        try:
            keyring.verify(
                action=str(request["action"]),
                workflow_id=str(request["workflow_id"]),
                run_id=str(request["run_id"]),
                payload=request["payload"],
                now=datetime.fromisoformat(str(request["now"])),
            )
        except Refusal as refusal:
            return {"ok": False, "kind": refusal.kind.value, "message": refusal.message}
        return {"ok": True}

    return verify_command
