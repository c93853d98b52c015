"""Escalation chains as declared, webhook signatures, and notifications made from events (no server)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import click
import pytest
import typer
from pydantic import BaseModel

from activities import EmailNotifier, LogNotifier, NotificationDispatcher
from activities._notifications import notification_for
from sdk import (
    DefinitionError,
    Escalate,
    NotificationKind,
    TaskInfo,
    WorkflowStatus,
    events,
    human_step,
    sign_webhook,
    verify_webhook_signature,
)
from sdk._policy import denial_reason
from sdk._types import TaskAction
from sdk.cli import parse as parse_argv
from sdk.cli._exit import UsageError
from sdk.runtime import EventBatch
from tests.workflows import escalation

HOUR = timedelta(hours=1)


class Form(BaseModel):
    approved: bool


# -- chains -----------------------------------------------------------------------------------------


def test_a_chain_is_kept_with_its_links_and_end() -> None:
    step = human_step(
        form=Form,
        name="unit.chain",
        due_in=HOUR,
        on_due=[Escalate(to_group="leads", due_in=HOUR), Escalate(to="boss", due_in=2 * HOUR), "expire"],
    )(lambda value: None)
    chain = step.options.escalation
    assert chain is not None and step.options.on_due is None
    assert [(link.to, link.to_group) for link in chain.links] == [(None, "leads"), ("boss", None)]
    assert chain.end == "expire"
    assert step.to_json()["options"]["escalation"] == [
        {"to": None, "to_group": "leads", "due_in": 3600.0, "reason": None},
        {"to": "boss", "to_group": None, "due_in": 7200.0, "reason": None},
        "expire",
    ]


def test_a_chain_may_end_with_a_link_without_due_time() -> None:
    step = human_step(form=Form, name="unit.open_chain", due_in=HOUR, on_due=[Escalate(to="boss")])
    chain = step(lambda value: None).options.escalation
    assert chain is not None and chain.end is None and chain.links[0].due_in is None


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"on_due": []}, r"on_due=\[\] is empty"),
        (
            {"on_due": [Escalate(to="x", due_in=HOUR)], "due_in": None},
            "needs due_in= \\(the first due time\\)",
        ),
        ({"on_due": ["expire"]}, r"has no escalation: write on_due='expire'"),
        ({"on_due": [Escalate(to="x", due_in=HOUR), "later"]}, "ends with 'expire' or 'complete'"),
        ({"on_due": ["expire", Escalate(to="x")]}, "link 1 of on_due=.* is 'expire'"),
        ({"on_due": [Escalate(to="x"), Escalate(to="y")]}, "link 1 has no due_in=, so the links after it"),
        ({"on_due": [Escalate(to="x"), "expire"]}, "last Escalate has no due_in="),
        ({"on_due": [Escalate(to="x", due_in=HOUR), "complete"]}, "needs default="),
        ({"on_due": [Escalate(to="x")], "escalate_to": "y"}, "do not apply to a chain"),
        ({"notify": "ops"}, "notify= takes a list of notifier names"),
    ],
)
def test_chain_errors_name_the_fix(options: dict[str, Any], match: str) -> None:
    options = {"due_in": HOUR, **options}
    with pytest.raises(DefinitionError, match=match):
        human_step(form=Form, **options)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "needs to= .* or to_group="),
        ({"to": ""}, "needs to="),
        ({"to": "x", "to_group": " "}, r"to_group=\.\.\.\) must be a non-empty string"),
        ({"to": "x", "due_in": timedelta(0)}, "must be a positive timedelta"),
    ],
)
def test_a_bad_link_is_refused(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(DefinitionError, match=match):
        Escalate(**kwargs)


def test_escalating_by_command_is_for_the_assignee_the_claimant_or_an_administrator() -> None:
    task = TaskInfo(
        task_id="t",
        step_execution_id="s",
        step_name="x",
        title="x",
        form_name="Form",
        form_schema={},
        assignee_id="ann",
        assignee_group="clerks",
        created_at=datetime.now(UTC),
    )
    assert denial_reason(task, TaskAction.ESCALATE, "ann") is None
    assert denial_reason(task, TaskAction.ESCALATE, "root", admin=True) is None
    assert "may escalate" in (denial_reason(task, TaskAction.ESCALATE, "bob", ["clerks"]) or "")


# -- webhook signatures -----------------------------------------------------------------------------


def test_a_webhook_signature_verifies_only_for_its_secret_body_and_time() -> None:
    body = b'{"kind":"created"}'
    header = sign_webhook("s3cret", body, 1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    assert verify_webhook_signature("s3cret", body, header, now=1_700_000_100)
    assert verify_webhook_signature(b"s3cret", body, header, now=1_700_000_100)
    assert not verify_webhook_signature("other", body, header, now=1_700_000_100)
    assert not verify_webhook_signature("s3cret", body + b" ", header, now=1_700_000_100)
    assert not verify_webhook_signature("s3cret", body, header, now=1_700_000_301)  # too old
    assert not verify_webhook_signature("s3cret", body, header, now=1_699_999_600)  # from the future
    for broken in (None, "", "v1=abc", "t=soon,v1=abc", header.replace("v1=", "v0=")):
        assert not verify_webhook_signature("s3cret", body, broken, now=1_700_000_000)


# -- notifications from events ----------------------------------------------------------------------


def _batch(*fields: dict[str, Any]) -> tuple[EventBatch, list[events.WorkflowEvent]]:
    instance = uuid.uuid4()
    now = datetime.now(UTC)
    made: list[events.WorkflowEvent] = []
    for spec in fields:
        spec = dict(spec)
        cls = spec.pop("cls")
        made.append(cls(instance_id=instance, timestamp=now, **spec))
    batch = EventBatch(
        workflow_id="wf-1",
        run_id="run-1",
        namespace="default",
        task_queue="q",
        workflow_type="w@1",
        workflow_name="w",
        workflow_version="1",
        tenant_id="acme",
        events=[{**events.event_to_dict(e), "seq": i} for i, e in enumerate(made, start=1)],
    )
    return batch, made


def test_each_task_lifecycle_event_makes_its_notification() -> None:
    task = uuid.uuid4()
    common = {"step_name": "esc_plain", "task_id": task}
    batch, made = _batch(
        {"cls": events.HumanTaskCreated, **common, "title": "T", "assignee_group": "clerks"},
        {"cls": events.HumanTaskClaimed, **common, "claimed_by": "bob"},
        {"cls": events.HumanTaskReassigned, **common, "reassigned_by": "root", "to_assignee_id": "cara"},
        {
            "cls": events.HumanTaskReassigned,
            **common,
            "reassigned_by": "system",
            "to_assignee_group": "leads",
            "escalation_level": 1,
            "replaces_assignment": True,
        },
        {"cls": events.HumanTaskCompleted, **common, "completed_by": "cara"},
        {"cls": events.HumanTaskCompleted, **common, "completed_by": "system", "status": "expired"},
        {"cls": events.HumanTaskCanceled, **common, "canceled_by": "ann", "reason": "withdrawn"},
        {"cls": events.StepStarted, "step_name": "x", "step_type": "MACHINE"},
    )
    made_notes = [notification_for(batch, e, int(i["seq"])) for e, i in zip(made, batch.events, strict=True)]
    assert made_notes[-1] is None  # not a task event
    notes = [n for n in made_notes if n is not None]
    assert [n.kind for n in notes] == [
        NotificationKind.CREATED,
        NotificationKind.CLAIMED,
        NotificationKind.ASSIGNED,
        NotificationKind.ESCALATED,
        NotificationKind.COMPLETED,
        NotificationKind.EXPIRED,
        NotificationKind.CANCELED,
    ]
    assert len({n.id for n in notes}) == len(notes)  # one id per event
    assert all(n.task_id == str(task) and n.tenant_id == "acme" and n.workflow_id == "wf-1" for n in notes)
    assert (notes[0].title, notes[0].assignee_group) == ("T", "clerks")
    assert (notes[1].actor, notes[2].actor, notes[2].assignee_id) == ("bob", "root", "cara")
    assert (notes[3].escalation_level, notes[3].assignee_group, notes[3].actor) == (1, "leads", "system")
    assert (notes[6].actor, notes[6].reason) == ("ann", "withdrawn")


def test_notifiers_get_every_step_or_only_the_steps_naming_them() -> None:
    everyone = LogNotifier("everyone")
    named = LogNotifier("hooks", every_step=False)
    completions = LogNotifier("done", kinds=["completed"])
    dispatcher = NotificationDispatcher([everyone, named, completions])
    batch, (plain, noted) = _batch(
        {"cls": events.HumanTaskCreated, "step_name": escalation.esc_plain.name, "task_id": uuid.uuid4()},
        {"cls": events.HumanTaskCreated, "step_name": escalation.esc_noted.name, "task_id": uuid.uuid4()},
    )
    first, second = (notification_for(batch, e, n) for n, e in enumerate((plain, noted), start=1))
    assert first is not None and second is not None
    assert dispatcher.targets(first) == ["everyone"]
    assert dispatcher.targets(second) == ["everyone", "hooks"]
    with pytest.raises(ValueError, match="notifier names must be unique"):
        NotificationDispatcher([LogNotifier(), LogNotifier()])


def test_an_email_names_the_task_and_what_happened() -> None:
    batch, (event,) = _batch(
        {
            "cls": events.HumanTaskReassigned,
            "step_name": "esc_plain",
            "task_id": uuid.uuid4(),
            "reassigned_by": "root",
            "to_assignee_id": "cara",
            "reason": "bob is away",
        }
    )
    note = notification_for(batch, event, 1)
    assert note is not None
    mailer = EmailNotifier(
        "localhost", sender="dwf@example.com", to=lambda n: [f"{n.assignee_id}@example.com"]
    )
    message = mailer.message(note, mailer.recipients(note))
    assert (message["To"], message["Subject"]) == ("cara@example.com", "[assigned] esc_plain")
    assert "Reason: bob is away" in message.get_content()


# -- the command line -------------------------------------------------------------------------------


def test_bulk_and_escalate_commands_parse() -> None:
    args = parse_argv(
        [
            "tasks",
            "bulk",
            "reassign",
            "--group",
            "g",
            "--to",
            "h",
            "--reason",
            "r",
            "--user",
            "u",
            "--dry-run",
        ]
    )
    assert args.handler.__name__ == "bulk_tasks"
    assert (args.action, args.groups, args.to_group, args.reason, args.dry_run) == (
        "reassign",
        ["g"],
        "h",
        "r",
        True,
    )
    assert (args.user, args.user_groups, args.admin, args.overdue) == ("u", [], False, False)
    args = parse_argv(["tasks", "escalate", "T", "--user", "u", "--reason", "away"])
    assert (args.handler.__name__, args.task_id, args.reason) == ("escalate_task", "T", "away")
    args = parse_argv(
        ["instances", "bulk", "cancel", "--by", "root", "--status", "waiting", "--workflow", "w"]
    )
    assert (args.handler.__name__, args.action, args.status, args.workflow) == (
        "bulk_instances",
        "cancel",
        WorkflowStatus.WAITING,
        "w",
    )


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["tasks", "bulk", "reassign", "--group", "g", "--to", "h", "--user", "u"], "--reason"),
        (["tasks", "bulk", "comment", "--user", "u"], "--body"),
        (["tasks", "bulk", "archive", "--user", "u"], "unknown action 'archive'"),
        (["instances", "bulk", "delete", "--by", "u"], "unknown action 'delete'"),
        (
            ["tasks", "bulk", "escalate", "--user", "u", "--overdue", "--due-before", "2030-01-01"],
            "not allowed",
        ),
    ],
)
def test_bulk_usage_errors_send_nothing(argv: list[str], fragment: str) -> None:
    with pytest.raises((UsageError, typer.BadParameter, click.UsageError)) as refused:
        parse_argv(argv)
    assert fragment in str(refused.value)
