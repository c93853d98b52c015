"""Domain events: the seed's vocabulary, and a JSON round trip for every event class."""

from __future__ import annotations

import dataclasses
import inspect
import json
import typing
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import pytest

from sdk import events

EVENT_CLASSES = sorted(events.EVENT_TYPES.values(), key=lambda cls: cls.__name__)


def _sample(annotation: Any, index: int) -> Any:
    """A non-default value of the field's type (so a dropped field shows in the round trip)."""
    args = set(typing.get_args(annotation)) - {type(None)}
    if annotation is UUID or UUID in args:
        return uuid4()
    if annotation is datetime or datetime in args:
        return datetime(2026, 3, 1, 12, 30, index, 123456, tzinfo=timezone(timedelta(hours=2)))
    if annotation is bool:
        return True  # every bool field defaults to False
    if annotation is str or str in args:
        return f"value-{index}"
    if annotation is int or int in args:
        return 3 + index
    if annotation is float or float in args:
        return 1.5 + index
    if typing.get_origin(annotation) is dict or any(typing.get_origin(a) is dict for a in args):
        return {"key": index, "nested": {"list": [1, "two", None]}}
    if typing.get_origin(annotation) is list or any(typing.get_origin(a) is list for a in args):
        return [f"item-{index}", "other"]
    if annotation is Any:
        return {"any": [index, True]}
    raise AssertionError(f"no sample for {annotation!r}")


def _populated(cls: type[events.WorkflowEvent]) -> events.WorkflowEvent:
    hints = typing.get_type_hints(cls)
    values = {f.name: _sample(hints[f.name], i) for i, f in enumerate(dataclasses.fields(cls))}
    return cls(**values)


SEED_EVENTS = {
    "WorkflowStarted",
    "WorkflowCompleted",
    "WorkflowFailed",
    "WorkflowCanceled",
    "WorkflowPaused",
    "WorkflowResumed",
    "StepStarted",
    "StepCompleted",
    "StepFailed",
    "StepSkipped",
    "HumanTaskCreated",
    "HumanTaskCompleted",
    "HumanTaskReassigned",
}
"""The seed's thirteen event classes (fourteen with the WorkflowEvent base): kept, never renamed."""


def test_the_seed_vocabulary_is_kept_and_every_event_class_is_registered() -> None:
    declared = {
        name
        for name, obj in vars(events).items()
        if inspect.isclass(obj) and issubclass(obj, events.WorkflowEvent) and obj is not events.WorkflowEvent
    }
    assert declared == set(events.EVENT_TYPES)
    assert SEED_EVENTS - declared == set(), "a seed event is missing"
    assert set(events.__all__) >= declared | {"WorkflowEvent", "event_to_dict", "event_from_dict"}
    assert all(name == cls.__name__ for name, cls in events.EVENT_TYPES.items())


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda cls: cls.__name__)
def test_round_trip_through_json_with_every_field_set(cls: type[events.WorkflowEvent]) -> None:
    event = _populated(cls)
    encoded = events.event_to_dict(event)
    assert encoded["type"] == cls.__name__
    decoded = events.event_from_dict(json.loads(json.dumps(encoded)))
    assert type(decoded) is cls
    assert decoded == event
    assert decoded.timestamp.utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda cls: cls.__name__)
def test_round_trip_with_only_required_fields(cls: type[events.WorkflowEvent]) -> None:
    hints = typing.get_type_hints(cls)
    required = {
        f.name: _sample(hints[f.name], i)
        for i, f in enumerate(dataclasses.fields(cls))
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    event = cls(**required)
    assert events.event_from_dict(json.loads(json.dumps(events.event_to_dict(event)))) == event


def test_serialized_form_is_plain_json_types() -> None:
    instance_id = uuid4()
    started = events.WorkflowStarted(
        instance_id=instance_id,
        timestamp=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        workflow_name="expense_approval",
        workflow_version="1.0.0",
        initial_data={"amount": 12.5},
    )
    assert events.event_to_dict(started) == {
        "type": "WorkflowStarted",
        "data": {
            "instance_id": str(instance_id),
            "timestamp": "2026-01-02T03:04:05+00:00",
            "workflow_name": "expense_approval",
            "workflow_version": "1.0.0",
            "initial_data": {"amount": 12.5},
            "user_id": None,
            "tenant_id": None,
            "workflow_id": None,
            "run_id": None,
        },
    }


def test_unknown_event_type_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        events.event_from_dict({"type": "WorkflowExploded", "data": {}})
