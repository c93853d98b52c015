"""Escalation chains, task notifications and bulk actions on the real dev server, both databases.

One worker per backend (mirror on, an event handler capturing events, notifiers: one capturing
every notification in memory, a webhook to a local HTTP receiver that fails each first attempt,
an e-mail notifier to a local SMTP server, and one that always fails) and one client connected
with the database, shared by the module's tests. Chains run to their end with one-second
links; every test ends with a clean audit of the instances it touched.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from temporalio.client import WorkflowFailureError, WorkflowHistory, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.worker import Replayer

from activities import EmailNotifier, NotifierBase, WebhookNotifier
from sdk import (
    ErrorKind,
    InstanceHandle,
    InvalidInputError,
    NotificationKind,
    PermissionDeniedError,
    TaskNotification,
    TaskNotPendingError,
    TaskStatus,
    WorkflowClient,
    WorkflowStatus,
    events,
    verify_webhook_signature,
)
from sdk.mirror import AssignmentAction, MirrorQueries, MirrorWriter, audit
from tests.histories.record_chains import HISTORY
from tests.integration.support import DatabaseFactory
from tests.workflows import escalation
from tests.workflows.escalation import ANN, BOSS, CHIEFS, CLERKS, LEADS, Outcome, Request
from worker import sandbox_runner

Eventually = Callable[..., Awaitable[Any]]
SECRET = "test-webhook-secret"
BOB = {"user": "bob", "groups": [CLERKS]}
ROOT = {"user": "root", "admin": True}
_SCRIPT = Path(sys.executable).parent / "dwf"
DWF = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "sdk._cli"]


# -- the receivers ----------------------------------------------------------------------------------


@dataclass
class Received:
    """One request the HTTP receiver got."""

    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class WebhookReceiver:
    """A minimal HTTP server: answers 500 to the first POST of each notification, then 200."""

    requests: list[Received] = field(default_factory=list)
    server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/hook"

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")[1:]
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)
        }
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        seen_before = any(
            r.headers.get("x-dwf-notification-id") == headers.get("x-dwf-notification-id")
            for r in self.requests
        )
        status = 200 if seen_before else 500
        self.requests.append(Received(headers, body, status))
        reason = "OK" if status == 200 else "Internal Server Error"
        writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    def delivered(self, task_id: str) -> list[tuple[Received, TaskNotification]]:
        found = []
        for request in self.requests:
            if request.status == 200:
                notification = TaskNotification.model_validate_json(request.body)
                if notification.task_id == task_id:
                    found.append((request, notification))
        return found


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd's hook name
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Capture(NotifierBase):
    """Keeps every notification it is sent."""

    def __init__(self) -> None:
        super().__init__("capture")
        self.received: list[TaskNotification] = []

    async def send(self, notification: TaskNotification) -> None:
        self.received.append(notification)


class Broken(NotifierBase):
    """Fails every delivery of a completion: its retries run out, the instance never notices."""

    def __init__(self) -> None:
        super().__init__("broken", kinds=["completed"])
        self.attempts = 0

    async def send(self, notification: TaskNotification) -> None:
        self.attempts += 1
        raise RuntimeError("the broken notifier fails")


# -- the lab ----------------------------------------------------------------------------------------


@dataclass
class Lab:
    backend: str
    client: WorkflowClient
    writer: MirrorWriter
    task_queue: str
    seen: list[events.WorkflowEvent]
    capture: Capture
    broken: Broken
    hooks: WebhookReceiver
    mailbox: _Mailbox

    @property
    def queries(self) -> MirrorQueries:
        queries: MirrorQueries = self.client.queries
        return queries

    async def start(self, route: escalation.Route, *, tenant_id: str | None = None) -> InstanceHandle[Any]:
        request = Request(subject=f"{route}-{uuid.uuid4().hex[:6]}", route=route)
        return await self.client.start(
            escalation.escalation_flow, request, tenant_id=tenant_id, task_queue=self.task_queue
        )

    def notified(self, task_id: str) -> list[TaskNotification]:
        return sorted((n for n in self.capture.received if n.task_id == task_id), key=lambda n: n.id)

    async def assert_audit_clean(self, *handles: InstanceHandle[Any]) -> None:
        report = await audit(self.client.temporal, self.writer, [h.id for h in handles])
        assert report.checked == len(handles)
        assert report.clean, [str(m) for m in report.mismatches]


@pytest.fixture(name="smtp_port", scope="module")
def fixture_smtp() -> Iterator[tuple[int, _Mailbox]]:
    mailbox = _Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield controller.port, mailbox
    finally:
        controller.stop()


@pytest.fixture(name="lab", scope="module")
async def fixture_lab(
    backend: str,
    database_factory: DatabaseFactory,
    server: Any,
    new_worker: Any,
    smtp_port: tuple[int, _Mailbox],
) -> AsyncIterator[Lab]:
    url = await database_factory.create(backend)
    writer = MirrorWriter.from_url(url)
    await writer.upgrade_schema()
    hooks = WebhookReceiver()
    await hooks.start()
    port, mailbox = smtp_port
    seen: list[events.WorkflowEvent] = []
    capture, broken = Capture(), Broken()
    notifiers = [
        capture,
        broken,
        WebhookNotifier(hooks.url, SECRET, name="hooks", every_step=False),
        EmailNotifier(
            "127.0.0.1",
            port=port,
            sender="dwf@example.com",
            to=["desk@example.com"],
            name="mail",
            every_step=False,
        ),
    ]
    worker = new_worker(
        escalation.escalation_flow,
        mirror=writer,
        event_handlers=[seen.append],
        notifiers=notifiers,
        notification_attempts=3,
    )
    client = await WorkflowClient.connect(server.target, database_url=url, task_queue=worker.task_queue)
    try:
        async with worker:
            yield Lab(backend, client, writer, worker.task_queue, seen, capture, broken, hooks, mailbox)
    finally:
        await client.close()
        await writer.close()
        await hooks.stop()


async def _pending_task_id(handle: InstanceHandle[Any]) -> str:
    task = await handle.next_task(timeout=30)
    return task.task_id


# -- escalation chains ------------------------------------------------------------------------------


async def test_a_chain_escalates_twice_then_expires(lab: Lab, assert_eventually: Eventually) -> None:
    handle = await lab.start("chain_expire")
    task_id = await _pending_task_id(handle)
    created = await lab.queries.get_task(task_id)
    assert (created.assignee_id, created.assignee_group) == (ANN, None)

    assert await asyncio.wait_for(handle.result(), timeout=30) == Outcome(outcome="expired")
    escalations = [
        e for e in lab.seen if isinstance(e, events.HumanTaskReassigned) and str(e.task_id) == task_id
    ]
    assert [(e.escalation_level, e.to_assignee_id, e.to_assignee_group) for e in escalations] == [
        (1, None, LEADS),
        (2, BOSS, CHIEFS),
    ]
    assert all(e.reassigned_by == "system" for e in escalations)
    assert [e.reason for e in escalations] == ["escalated (level 1): task overdue", "leads did not answer"]
    # Each link falls due one second after the previous one, and sets the next due time.
    assert created.due_at is not None and escalations[0].timestamp >= created.due_at
    first_due, second_due = escalations[0].due_at, escalations[1].due_at
    assert first_due is not None and second_due is not None
    assert escalations[1].timestamp >= first_due and second_due > first_due

    done = await lab.queries.get_task(task_id)
    assert (done.status, done.assignee_id, done.assignee_group) == (TaskStatus.EXPIRED, BOSS, CHIEFS)
    assert done.due_at == second_due  # the mirror shows the last link's due time
    trail = (await lab.queries.task_assignments(task_id)).items
    assert [(a.action, a.from_assignee, a.to_assignee, a.by_user) for a in trail] == [
        (AssignmentAction.ESCALATE, ANN, LEADS, "system"),  # a link replaces the assignment
        (AssignmentAction.ESCALATE, LEADS, BOSS, "system"),
    ]

    async def notified() -> None:
        kinds = [n.kind for n in lab.notified(task_id)]
        assert kinds == [
            NotificationKind.CREATED,
            NotificationKind.ESCALATED,
            NotificationKind.ESCALATED,
            NotificationKind.EXPIRED,
        ], kinds

    await assert_eventually(notified, timeout=20)
    level_two = lab.notified(task_id)[2]
    assert (level_two.escalation_level, level_two.assignee_id, level_two.assignee_group) == (2, BOSS, CHIEFS)
    assert level_two.due_at == second_due and level_two.title == created.title
    await lab.assert_audit_clean(handle)


async def test_a_chain_ending_with_complete_answers_with_the_default(
    lab: Lab, assert_eventually: Eventually
) -> None:
    handle = await lab.start("chain_default")
    task_id = await _pending_task_id(handle)

    result = await asyncio.wait_for(handle.result(), timeout=30)
    assert result == Outcome(outcome="answered", approved=False, note="nobody answered")
    done = await lab.queries.get_task(task_id)
    assert (done.status, done.completed_by) == (TaskStatus.COMPLETED, "system")
    assert (done.assignee_id, done.assignee_group) == (None, LEADS)
    (trail,) = (await lab.queries.task_assignments(task_id)).items
    assert (trail.action, trail.from_assignee, trail.to_assignee) == (AssignmentAction.ESCALATE, ANN, LEADS)

    async def notified() -> None:
        kinds = {n.kind for n in lab.notified(task_id)}
        assert kinds == {
            NotificationKind.CREATED,
            NotificationKind.REMINDER,
            NotificationKind.ESCALATED,
            NotificationKind.COMPLETED,
        }, kinds

    await assert_eventually(notified, timeout=20)
    await lab.assert_audit_clean(handle)


# -- notifications ----------------------------------------------------------------------------------


async def test_webhook_and_email_notifications_are_signed_retried_and_never_fail_the_instance(
    lab: Lab, assert_eventually: Eventually
) -> None:
    handle = await lab.start("noted")
    task_id = await _pending_task_id(handle)
    await lab.client.claim_task(task_id, **BOB)
    await lab.client.reassign_task(task_id, to_user="cara", reason="bob is away", **ROOT)
    await lab.client.complete_task(task_id, {"approved": True, "note": "fine"}, user="cara")
    assert (await handle.result()).approved is True

    expected = ["created", "claimed", "assigned", "completed"]

    async def hooked() -> list[tuple[Received, TaskNotification]]:
        delivered = lab.hooks.delivered(task_id)
        assert sorted(n.kind.value for _, n in delivered) == sorted(expected), delivered
        return delivered

    delivered = await assert_eventually(hooked, timeout=30)
    for request, notification in delivered:
        signature = request.headers["x-dwf-signature"]
        assert verify_webhook_signature(SECRET, request.body, signature)
        assert not verify_webhook_signature("another secret", request.body, signature)
        assert not verify_webhook_signature(SECRET, request.body + b" ", signature)
        # The receiver refused the first attempt: Temporal retried it, with the same notification.
        attempts = [r for r in lab.hooks.requests if r.headers["x-dwf-notification-id"] == notification.id]
        assert [r.status for r in attempts] == [500, 200]
        assert json.loads(attempts[0].body) == json.loads(attempts[1].body)
    by_kind = {n.kind.value: n for _, n in delivered}
    assert (by_kind["claimed"].actor, by_kind["assigned"].actor) == ("bob", "root")
    assert (by_kind["assigned"].assignee_id, by_kind["assigned"].reason) == ("cara", "bob is away")
    assert (by_kind["completed"].actor, by_kind["created"].assignee_group) == ("cara", CLERKS)

    async def mailed() -> list[Message]:
        mine = [m for m in lab.mailbox.messages if task_id in m.get_payload()]
        assert sorted(m["Subject"].split("]")[0][1:] for m in mine) == sorted(expected)
        return mine

    mails = await assert_eventually(mailed, timeout=30)
    assert {m["To"] for m in mails} == {"desk@example.com"}

    # The broken notifier ran out of attempts on the completion; its delivery says so.
    completed = by_kind["completed"]
    outcome = await lab.client.temporal.get_workflow_handle(completed.id).result()
    assert outcome["broken"].startswith("failed:") and outcome["hooks"] == "delivered"
    # A step that names no notifier reaches only those listening to every step.
    await lab.assert_audit_clean(handle)


async def test_canceling_an_instance_notifies_its_open_task(lab: Lab, assert_eventually: Eventually) -> None:
    handle = await lab.start("plain")
    task_id = await _pending_task_id(handle)
    await handle.cancel(reason="withdrawn", by="ann")

    async def notified() -> TaskNotification:
        canceled = [n for n in lab.notified(task_id) if n.kind is NotificationKind.CANCELED]
        assert len(canceled) == 1, lab.notified(task_id)
        return canceled[0]

    canceled = await assert_eventually(notified, timeout=20)
    assert (canceled.actor, canceled.reason) == ("ann", "withdrawn")
    assert lab.hooks.delivered(task_id) == []  # the plain step names no webhook
    assert (await lab.queries.get_task(task_id)).status is TaskStatus.CANCELED
    await lab.assert_audit_clean(handle)


async def test_the_escalate_command_applies_the_next_link_early(
    lab: Lab, assert_eventually: Eventually
) -> None:
    handle = await lab.start("chain_expire")
    task_id = await _pending_task_id(handle)
    with pytest.raises(PermissionDeniedError):  # a clerk is neither assignee nor administrator
        await lab.client.escalate_task(task_id, **BOB)
    forged = {"task_id": task_id, "user": "mallory", "admin": True}
    with pytest.raises(WorkflowUpdateFailedError) as unsigned:  # from any Temporal client, unsigned
        await handle.temporal.execute_update("escalate_task_update", forged)
    assert isinstance(unsigned.value.cause, ApplicationError)
    assert unsigned.value.cause.type == ErrorKind.UNAUTHENTICATED.value
    escalated = await lab.client.escalate_task(task_id, reason="ann is on leave", **ROOT)
    assert (escalated.assignee_id, escalated.assignee_group) == (None, LEADS)

    assert await asyncio.wait_for(handle.result(), timeout=30) == Outcome(outcome="expired")
    trail = (await lab.queries.task_assignments(task_id)).items
    assert [(a.action, a.to_assignee, a.by_user, a.reason) for a in trail] == [
        (AssignmentAction.ESCALATE, LEADS, "root", "ann is on leave"),
        (AssignmentAction.ESCALATE, BOSS, "system", "leads did not answer"),
    ]
    with pytest.raises(TaskNotPendingError):
        await lab.client.escalate_task(task_id, **ROOT)
    await lab.assert_audit_clean(handle)


# -- bulk actions -----------------------------------------------------------------------------------


async def test_bulk_actions_check_each_task_and_report_what_was_refused(
    lab: Lab, assert_eventually: Eventually
) -> None:
    tenant, other = f"t-{uuid.uuid4().hex[:8]}", f"t-{uuid.uuid4().hex[:8]}"
    handles = [await lab.start("plain", tenant_id=tenant) for _ in range(3)]
    stranger = await lab.start("plain", tenant_id=other)
    task_ids = [await _pending_task_id(h) for h in handles]
    await _pending_task_id(stranger)

    async def mirrored() -> None:
        page = await lab.queries.pending_tasks(tenant_id=tenant, group=CLERKS)
        assert sorted(str(t.id) for t in page.items) == sorted(task_ids)

    await assert_eventually(mirrored)
    reassign = {"to_group": "auditors", "reason": "quarterly audit", "tenant_id": tenant, "group": CLERKS}

    # A dry run counts the tenant's matching tasks and sends nothing.
    dry = await lab.client.bulk_tasks("reassign", dry_run=True, **reassign, **ROOT)
    assert (dry.dry_run, dry.matched, sorted(i.id for i in dry.succeeded)) == (True, 3, sorted(task_ids))
    assert [(await lab.queries.get_task(t)).assignee_group for t in task_ids] == [CLERKS] * 3

    # Bad arguments are refused before anything is read or sent.
    with pytest.raises(InvalidInputError):
        await lab.client.bulk_tasks("reassign", to_group="auditors", tenant_id=tenant, **ROOT)

    # A clerk may reassign only the task they hold: the others are refused, each with its reason.
    await lab.client.claim_task(task_ids[0], tenant_id=tenant, **BOB)
    progress: list[tuple[int, int]] = []
    by_bob = await lab.client.bulk_tasks(
        "reassign", progress=lambda done, total: progress.append((done, total)), **reassign, **BOB
    )
    assert [i.id for i in by_bob.succeeded] == [task_ids[0]]
    assert sorted(i.id for i in by_bob.refused) == sorted(task_ids[1:])
    assert by_bob.refusals_by_error() == {"PermissionDeniedError": 2}
    assert all("may reassign" in (i.message or "") for i in by_bob.refused)
    assert progress == [(1, 3), (2, 3), (3, 3)]

    by_root = await lab.client.bulk_tasks("reassign", **reassign, **ROOT)
    assert (by_root.matched, len(by_root.succeeded), by_root.refused) == (2, 2, [])
    rows = [await lab.queries.get_task(t) for t in task_ids]
    assert {r.assignee_group for r in rows} == {"auditors"}
    assert (await lab.queries.pending_tasks(tenant_id=other, group=CLERKS)).total == 1  # untouched

    commented = await lab.client.bulk_tasks(
        "comment", body="please check", tenant_id=tenant, group="auditors", **ROOT
    )
    assert len(commented.succeeded) == 3
    assert [c.body for c in (await lab.queries.task_comments(task_ids[1])).items] == ["please check"]

    # Escalating tasks whose step has no chain: refused by the workflow, one by one.
    escalated = await lab.client.bulk_tasks("escalate", tenant_id=tenant, group="auditors", **ROOT)
    assert escalated.refusals_by_error() == {"InvalidInputError": 3}

    # Instances: pause and resume every one the filter matches (the other tenant's stays as is).
    paused = await lab.client.bulk_instances("pause", by="root", reason="audit", tenant_id=tenant)
    assert (paused.matched, len(paused.succeeded)) == (3, 3)

    async def statuses(*expected: WorkflowStatus) -> None:
        rows = (await lab.queries.instances(tenant_id=tenant)).items
        assert len(rows) == 3 and all(r.status in expected for r in rows), rows

    await assert_eventually(lambda: statuses(WorkflowStatus.PAUSED))
    assert (await lab.queries.instances(tenant_id=other)).items[0].status is WorkflowStatus.WAITING
    resumed = await lab.client.bulk_instances(
        "resume", by="root", tenant_id=tenant, status=WorkflowStatus.PAUSED
    )
    assert len(resumed.succeeded) == 3
    # Resumed: the mirror says RUNNING until the next step's events (the state query, WAITING).
    await assert_eventually(lambda: statuses(WorkflowStatus.RUNNING, WorkflowStatus.WAITING))

    canceled = await lab.client.bulk_tasks(
        "cancel", reason="audit over", tenant_id=tenant, group="auditors", **ROOT
    )
    assert sorted(i.workflow_id for i in canceled.succeeded) == sorted(h.id for h in handles)
    for handle in handles:
        with pytest.raises(WorkflowFailureError):
            await asyncio.wait_for(handle.result(), timeout=30)
    instances = await lab.client.bulk_instances("cancel", by="root", tenant_id=tenant, dry_run=True)
    assert instances.matched == 3
    await lab.assert_audit_clean(*handles)


async def test_dwf_tasks_bulk_dry_run_then_reassign(
    lab: Lab, server: Any, assert_eventually: Eventually
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    handles = [await lab.start("plain", tenant_id=tenant) for _ in range(2)]
    task_ids = sorted([await _pending_task_id(h) for h in handles])
    env = {
        **os.environ,
        "DWF_TEMPORAL_ADDRESS": server.target,
        "DWF_TASK_QUEUE": lab.task_queue,
        "DWF_DATABASE_URL": lab.client.database_url or "",
        "DWF_APP": "tests.workflows.escalation",
    }
    bulk = ["tasks", "bulk", "reassign", "--group", CLERKS, "--to", "auditors", "--reason", "moved"]
    bulk += ["--tenant", tenant, "--user", "root", "--admin", "--json"]

    async def dwf(*args: str) -> tuple[int, Any]:
        process = await asyncio.create_subprocess_exec(
            *DWF, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode is not None
        return process.returncode, json.loads(out) if out.strip() else err.decode()

    code, dry = await dwf(*bulk, "--dry-run")
    assert (code, dry["dry_run"], dry["matched"]) == (0, True, 2)
    assert sorted(item["id"] for item in dry["succeeded"]) == task_ids
    code, done = await dwf(*bulk)
    assert (code, done["matched"], len(done["succeeded"]), done["refused"]) == (0, 2, 2, [])
    assert {(await lab.queries.get_task(t)).assignee_group for t in task_ids} == {"auditors"}

    # dwf tasks escalate: the next link now; once none is left, refused (exit 2, like bad input).
    slow = await lab.start("chain_slow", tenant_id=tenant)
    slow_task = await _pending_task_id(slow)
    escalate = ["tasks", "escalate", slow_task, "--tenant", tenant, "--user", "root", "--admin", "--json"]
    code, escalated = await dwf(*escalate)
    assert (code, escalated["assignee_id"], escalated["assignee_group"]) == (0, None, LEADS)
    code, refused = await dwf(*escalate)
    assert code == 2 and "no further escalation" in refused, refused
    (trail,) = (await lab.queries.task_assignments(slow_task)).items
    assert (trail.action, trail.by_user, trail.reason) == (AssignmentAction.ESCALATE, "root", "moved up")
    await slow.cancel(reason="done", by="root")
    with pytest.raises(WorkflowFailureError):
        await asyncio.wait_for(slow.result(), timeout=30)
    await lab.assert_audit_clean(*handles, slow)


async def test_the_recorded_chain_history_replays() -> None:
    # Written by ``python -m tests.histories.record_chains``: an early escalation by command, the
    # second link at its due time, then the expiry. A change of the commands a chain issues
    # fails here, as it would fail running instances.
    path = HISTORY
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(
        workflows=[escalation.escalation_flow.workflow_class],
        data_converter=pydantic_data_converter,
        workflow_runner=sandbox_runner(),
    )
    result = await replayer.replay_workflow(history)
    assert result.replay_failure is None
    updates = [e for e in history.events if e.HasField("workflow_execution_update_accepted_event_attributes")]
    timers = [e for e in history.events if e.HasField("timer_fired_event_attributes")]
    assert len(updates) == 1 and len(timers) >= 1
