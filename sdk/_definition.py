"""The definition objects the decorators build: machine steps, human steps, workflows.

Each is frozen once built and validated when the decorator is applied. Calling a step inside
a workflow schedules it (an activity, or a human task and a wait); outside a workflow a
machine step is its plain async function, so it can be unit tested directly.
"""

from __future__ import annotations

import inspect
import typing
import weakref
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, Literal, ParamSpec, TypeVar

from pydantic import BaseModel
from temporalio import workflow as _wf
from temporalio.common import RetryPolicy

from ._errors import DefinitionError
from ._escalation import EscalationChain

__all__ = [
    "DuePolicy",
    "HumanStep",
    "HumanStepOptions",
    "RejectRule",
    "MachineStep",
    "MachineStepOptions",
    "WorkflowDefinition",
]

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=BaseModel)

DuePolicy = Literal["expire", "escalate", "complete"]
RejectRule = Literal["first", "unreachable"]
"""When a quorum task is rejected: at the first rejection, or once the quorum is unreachable."""
"""What happens when a human task reaches ``due_at`` (None: it only shows as overdue)."""

ValueOrFn = str | Callable[..., str | None] | None


def resolved_hints(fn: Callable[..., Any], what: str) -> dict[str, Any]:
    """The function's annotations as real types (so Temporal's converter can decode args)."""
    try:
        return typing.get_type_hints(fn)
    except Exception as exc:  # NameError for unresolved forward references, mostly
        raise DefinitionError(
            f"cannot resolve the type hints of {what} {fn.__qualname__}: {exc}; "
            "define the models it uses before the decorated function"
        ) from exc


@dataclass(frozen=True)
class MachineStepOptions:
    """Activity options of a machine step (see ``@machine_step``)."""

    start_to_close_timeout: timedelta | None = None
    schedule_to_close_timeout: timedelta | None = None
    heartbeat_timeout: timedelta | None = None
    max_attempts: int = 3
    initial_interval: timedelta = timedelta(seconds=1)
    backoff: float = 2.0
    max_interval: timedelta | None = None
    non_retryable_errors: tuple[str, ...] = ()
    local: bool = False
    local_retry_threshold: timedelta | None = None

    def retry_policy(self) -> RetryPolicy:
        """The Temporal retry policy these options describe."""
        return RetryPolicy(
            initial_interval=self.initial_interval,
            backoff_coefficient=self.backoff,
            maximum_interval=self.max_interval,
            maximum_attempts=self.max_attempts,
            non_retryable_error_types=list(self.non_retryable_errors) or None,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-able view, for ``workflow_definitions.definition_json``."""

        def secs(value: timedelta | None) -> float | None:
            return None if value is None else value.total_seconds()

        return {
            "start_to_close_timeout": secs(self.start_to_close_timeout),
            "schedule_to_close_timeout": secs(self.schedule_to_close_timeout),
            "heartbeat_timeout": secs(self.heartbeat_timeout),
            "max_attempts": self.max_attempts,
            "initial_interval": secs(self.initial_interval),
            "backoff": self.backoff,
            "max_interval": secs(self.max_interval),
            "non_retryable_errors": list(self.non_retryable_errors),
            "local": self.local,
            "local_retry_threshold": secs(self.local_retry_threshold),
        }


@dataclass(frozen=True)
class MachineStep(Generic[P, R]):
    """A machine step: a Temporal activity when called inside a workflow."""

    fn: Callable[P, Coroutine[Any, Any, R]]
    name: str
    options: MachineStepOptions
    param_types: tuple[Any, ...]
    return_type: Any

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]:
        if _wf.in_workflow():
            from ._steps import run_machine_step

            return run_machine_step(self, self.positional(args, kwargs))
        return self.fn(*args, **kwargs)

    def positional(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
        """Bind keyword arguments to positions: Temporal passes activity args by position."""
        if not kwargs:
            return list(args)
        bound = inspect.signature(self.fn).bind(*args, **kwargs)
        bound.apply_defaults()
        return list(bound.args)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able description of the step."""
        return {"name": self.name, "type": "MACHINE", "options": self.options.to_json()}


@dataclass(frozen=True)
class HumanStepOptions:
    """Task options of a human step (see ``@human_step``)."""

    title: ValueOrFn = None
    description: ValueOrFn = None
    assignee: ValueOrFn = None
    assignee_group: ValueOrFn = None
    due_in: timedelta | None = None
    reminder_in: timedelta | None = None
    on_due: DuePolicy | None = None
    escalate_to: str | None = None
    escalate_to_group: str | None = None
    default: dict[str, Any] | None = None
    require_claim: bool = False
    # Approval policies (see docs/approvals.md); the defaults keep a plain task.
    quorum: int | None = None
    voters: tuple[str, ...] | Callable[..., Any] | None = None
    reject_on: RejectRule = "first"
    vote_field: str = "approved"
    exclude_starter: bool = False
    exclude_steps: tuple[str, ...] = ()
    priority: int | Callable[..., Any] = 50
    follow_up_in: timedelta | Callable[..., Any] | None = None
    escalation: EscalationChain | None = None
    """An escalation chain (``on_due=[...]``); ``on_due`` is then None."""
    notify: tuple[str, ...] = ()
    """Names of worker notifiers that receive this step's task events."""

    def to_json(self) -> dict[str, Any]:
        """A JSON-able view; computed values show as ``"<computed>"``."""

        def show(value: Any) -> Any:
            return "<computed>" if callable(value) else value

        view: dict[str, Any] = {
            "title": show(self.title),
            "description": show(self.description),
            "assignee": show(self.assignee),
            "assignee_group": show(self.assignee_group),
            "due_in": None if self.due_in is None else self.due_in.total_seconds(),
            "reminder_in": None if self.reminder_in is None else self.reminder_in.total_seconds(),
            "on_due": self.on_due,
            "escalate_to": self.escalate_to,
            "escalate_to_group": self.escalate_to_group,
            "default": self.default,
            "require_claim": self.require_claim,
            "escalation": None if self.escalation is None else self.escalation.to_json(),
            "notify": list(self.notify),
        }
        # Approval policies appear only when set, so a plain step's stored JSON is unchanged.
        if self.quorum is not None:
            view["quorum"] = self.quorum
            view["voters"] = list(self.voters) if isinstance(self.voters, tuple) else show(self.voters)
            view["reject_on"] = self.reject_on
            view["vote_field"] = self.vote_field
        if self.exclude_starter or self.exclude_steps:
            view["exclude_starter"] = self.exclude_starter
            view["exclude_steps"] = list(self.exclude_steps)
        if callable(self.priority) or self.priority != 50:
            view["priority"] = show(self.priority)
        if self.follow_up_in is not None:
            view["follow_up_in"] = (
                self.follow_up_in.total_seconds()
                if isinstance(self.follow_up_in, timedelta)
                else show(self.follow_up_in)
            )
        return view


@dataclass(frozen=True)
class HumanStep(Generic[P, F]):
    """A human step: inside a workflow, creates a task, waits for it, returns the form."""

    fn: Callable[P, Any]
    name: str
    form: type[F]
    options: HumanStepOptions

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, F]:
        if not _wf.in_workflow():
            raise RuntimeError(
                f"human step {self.name!r} can only be awaited inside a workflow; "
                f"call {self.fn.__name__}.fn(...) to test its title function"
            )
        from ._steps import run_human_step

        return run_human_step(self, list(args), kwargs)

    def form_schema(self) -> dict[str, Any]:
        """The form's JSON schema (stored on every task of this step; computed once per form)."""
        return _form_schema(self.form)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able description of the step, with its form's JSON schema."""
        return {
            "name": self.name,
            "type": "HUMAN",
            "form": self.form.__name__,
            "form_schema": self.form_schema(),
            "options": self.options.to_json(),
        }


_FORM_SCHEMAS: weakref.WeakKeyDictionary[type[BaseModel], dict[str, Any]] = weakref.WeakKeyDictionary()
"""Each form class's JSON schema. Weak keys: the sandbox imports the author's module, forms
included, again for every workflow run, so a strong cache would keep every run's copy of the
module alive for the life of the worker."""


def _form_schema(form: type[BaseModel]) -> dict[str, Any]:
    # Building a JSON schema costs about half a millisecond, on the workflow's hot path
    # (inside the sandbox, once per task); a form class does not change.
    try:
        return _FORM_SCHEMAS[form]
    except KeyError:
        schema = _FORM_SCHEMAS[form] = form.model_json_schema()
        return schema


def _input_schema(typ: Any) -> dict[str, Any]:
    """The JSON schema of one workflow parameter (``{}`` when pydantic cannot describe it)."""
    from pydantic import TypeAdapter

    try:
        return TypeAdapter(typ).json_schema()
    except Exception:  # an arbitrary annotation: accept anything, the workflow validates
        return {}


def _referenced_names(code: Any) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if inspect.iscode(const):
            names |= _referenced_names(const)
    return names


@dataclass(frozen=True)
class WorkflowDefinition(Generic[P, R]):
    """A versioned workflow definition, compiled to one Temporal workflow class."""

    fn: Callable[P, Coroutine[Any, Any, R]]
    name: str
    version: str
    description: str | None
    active: bool | None
    param_types: tuple[Any, ...]
    return_type: Any
    workflow_class: type = field(repr=False, compare=False, default=object)

    @property
    def workflow_type(self) -> str:
        """The Temporal workflow type name: ``name@version``."""
        return f"{self.name}@{self.version}"

    def steps(self) -> list[MachineStep[..., Any] | HumanStep[..., Any]]:
        """The steps the workflow function refers to by global name, in name order."""
        found: dict[str, MachineStep[..., Any] | HumanStep[..., Any]] = {}
        scope = self.fn.__globals__
        for name in sorted(_referenced_names(self.fn.__code__)):
            value = scope.get(name)
            if isinstance(value, MachineStep | HumanStep):
                found[value.name] = value
        return list(found.values())

    def to_json(self) -> dict[str, Any]:
        """The serializable definition stored in ``workflow_definitions.definition_json``."""
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "workflow_type": self.workflow_type,
            "module": self.fn.__module__,
            "function": self.fn.__qualname__,
            "steps": [step.to_json() for step in self.steps()],
            "input_schema": [_input_schema(t) for t in self.param_types],
        }

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]:
        # Calling the definition runs its body: inside a workflow that composes steps (a
        # sub-workflow inlined into the caller); outside one it is the plain function.
        return self.fn(*args, **kwargs)
