"""The built-in notifiers: a log line, a signed webhook POST, an e-mail over SMTP.

A notifier is called by the ``dwf.deliver_notification`` activity with one
:class:`sdk.TaskNotification`; raising makes Temporal retry the delivery (see ``_notifications``),
so ``send`` must be safe to call again for the same notification (its ``id`` identifies it).
Blocking I/O (``urllib``, ``smtplib``) runs in a thread, never on the worker's event loop.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Collection, Sequence
from email.message import EmailMessage
from typing import Protocol, runtime_checkable

from temporalio.exceptions import ApplicationError

from sdk import WEBHOOK_SIGNATURE_HEADER, NotificationKind, TaskNotification, sign_webhook

__all__ = ["EmailNotifier", "LogNotifier", "Notifier", "NotifierBase", "WebhookNotifier"]

logger = logging.getLogger("dwf.notifications")


@runtime_checkable
class Notifier(Protocol):
    """What a worker's ``notifiers=[...]`` hold.

    Attributes:
        name: Unique among the worker's notifiers; steps name it in ``@human_step(notify=[...])``.
        every_step: Receives the events of every human step (else only of the steps naming it).
        kinds: The kinds it receives (None: all).
    """

    name: str
    every_step: bool
    kinds: frozenset[NotificationKind] | None

    async def send(self, notification: TaskNotification) -> None:
        """Deliver one notification; raise to have Temporal retry it."""
        ...


class NotifierBase:
    """The options every built-in notifier shares (see :class:`Notifier`)."""

    def __init__(
        self, name: str, *, every_step: bool = True, kinds: Collection[NotificationKind | str] | None = None
    ) -> None:
        if not name:
            raise ValueError("a notifier needs a name")
        self.name = name
        self.every_step = every_step
        self.kinds = None if kinds is None else frozenset(NotificationKind(k) for k in kinds)

    async def send(self, notification: TaskNotification) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class LogNotifier(NotifierBase):
    """Logs each notification (logger ``dwf.notifications``, level INFO)."""

    def __init__(
        self,
        name: str = "log",
        *,
        every_step: bool = True,
        kinds: Collection[NotificationKind | str] | None = None,
    ) -> None:
        super().__init__(name, every_step=every_step, kinds=kinds)

    async def send(self, notification: TaskNotification) -> None:
        n = notification
        logger.info(
            "task %s %s: %r step %s of %s, assignee %s, group %s, by %s",
            n.task_id,
            n.kind.value,
            n.title,
            n.step_name,
            n.workflow_id,
            n.assignee_id,
            n.assignee_group,
            n.actor,
        )


class WebhookNotifier(NotifierBase):
    """POSTs each notification as JSON to ``url``, signed with ``secret`` (HMAC-SHA256).

    The body is :class:`sdk.TaskNotification` as JSON; the ``X-DWF-Signature`` header holds the
    signature (verify it with :func:`sdk.verify_webhook_signature`); ``X-DWF-Notification-Id``
    repeats the notification's id, for de-duplication. A response outside 2xx fails the
    attempt and Temporal retries it, except 4xx answers other than 408 and 429, which are final.
    """

    def __init__(
        self,
        url: str,
        secret: str | bytes,
        *,
        name: str = "webhook",
        timeout: float = 10.0,
        every_step: bool = True,
        kinds: Collection[NotificationKind | str] | None = None,
    ) -> None:
        super().__init__(name, every_step=every_step, kinds=kinds)
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"a webhook URL must be http:// or https://, got {url!r}")
        if not secret:
            raise ValueError("a webhook needs a secret to sign its requests")
        self.url = url
        self.secret = secret
        self.timeout = timeout

    async def send(self, notification: TaskNotification) -> None:
        body = notification.model_dump_json().encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "durable-workflows",
            WEBHOOK_SIGNATURE_HEADER: sign_webhook(self.secret, body, int(time.time())),
            "X-DWF-Notification-Id": notification.id,
        }
        await asyncio.to_thread(self._post, body, headers)

    def _post(self, body: bytes, headers: dict[str, str]) -> None:
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except urllib.error.HTTPError as err:
            final = 400 <= err.code < 500 and err.code not in (408, 429)
            raise ApplicationError(
                f"webhook {self.url} answered {err.code} {err.reason}",
                type="WebhookRefused" if final else "WebhookFailed",
                non_retryable=final,
            ) from None


Recipients = Sequence[str] | Callable[[TaskNotification], Sequence[str]]
"""Fixed addresses, or a function of the notification (e.g. the assignee's address)."""


class EmailNotifier(NotifierBase):
    """Sends each notification as a plain-text e-mail over SMTP (stdlib ``smtplib``).

    Args:
        host: The SMTP server.
        port: Its port (default 25).
        sender: The From address.
        to: Recipient addresses, or a function of the notification returning them (an empty
            list sends nothing).
        starttls: Upgrade the connection with STARTTLS before sending.
        username: Log in with this user (and ``password``).
        password: The SMTP password.
        timeout: Seconds for the connection and each command.
    """

    def __init__(
        self,
        host: str,
        *,
        sender: str,
        to: Recipients,
        port: int = 25,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        name: str = "email",
        every_step: bool = True,
        kinds: Collection[NotificationKind | str] | None = None,
    ) -> None:
        super().__init__(name, every_step=every_step, kinds=kinds)
        self.host, self.port, self.sender, self.to = host, port, sender, to
        self.starttls, self.username, self.password, self.timeout = starttls, username, password, timeout

    def recipients(self, notification: TaskNotification) -> list[str]:
        """The addresses this notification goes to."""
        return list(self.to(notification) if callable(self.to) else self.to)

    def message(self, notification: TaskNotification, recipients: Sequence[str]) -> EmailMessage:
        """The e-mail for one notification."""
        n = notification
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = ", ".join(recipients)
        message["Subject"] = f"[{n.kind.value}] {n.title or n.step_name}"
        message["Message-ID"] = f"<{n.id}@durable-workflows>"
        lines = [
            f"Task {n.task_id} ({n.step_name}) was {n.kind.value} at {n.at.isoformat()}.",
            f"Workflow: {n.workflow_id}",
            f"Assignee: {n.assignee_id or '-'}   Group: {n.assignee_group or '-'}",
            f"Due: {n.due_at.isoformat() if n.due_at else '-'}",
            f"By: {n.actor or '-'}",
        ]
        if n.reason:
            lines.append(f"Reason: {n.reason}")
        message.set_content("\n".join(lines) + "\n")
        return message

    async def send(self, notification: TaskNotification) -> None:
        recipients = self.recipients(notification)
        if recipients:
            await asyncio.to_thread(self._send, self.message(notification, recipients))

    def _send(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username is not None:
                smtp.login(self.username, self.password or "")
            smtp.send_message(message)
