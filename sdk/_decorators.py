"""The three decorators: ``@machine_step``, ``@human_step`` and ``@workflow``.

Each validates its input when applied and raises :class:`DefinitionError` naming the fix.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Coroutine, Sequence
from datetime import timedelta
from typing import Any, ParamSpec, TypeVar, overload

from pydantic import BaseModel

from ._compiler import compile_workflow
from ._definition import (
    DuePolicy,
    HumanStep,
    HumanStepOptions,
    MachineStep,
    MachineStepOptions,
    RejectRule,
    ValueOrFn,
    WorkflowDefinition,
    resolved_hints,
)
from ._errors import DefinitionError
from ._escalation import ChainEnd, Escalate, EscalationChain, escalation_chain
from ._registry import parse_version, registry
from ._types import QuorumDecision

__all__ = ["human_step", "machine_step", "workflow"]

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=BaseModel)


def _check_name(name: object, what: str) -> str:
    if (
        not isinstance(name, str)
        or not name
        or not name.replace("_", "a").replace(".", "a").replace("-", "a").isalnum()
    ):
        raise DefinitionError(
            f"bad {what} name {name!r}: use letters, digits, '_', '-' or '.', e.g. 'expense_approval'"
        )
    return name


def _check_timedelta(value: object, option: str) -> None:
    if value is not None and (not isinstance(value, timedelta) or value <= timedelta(0)):
        raise DefinitionError(f"{option} must be a positive datetime.timedelta, got {value!r}")


def _check_async(fn: object, decorator: str) -> None:
    if not callable(fn):
        raise DefinitionError(f"{decorator} must decorate a function, got {fn!r}")
    if not inspect.iscoroutinefunction(fn):
        name = getattr(fn, "__qualname__", repr(fn))
        raise DefinitionError(
            f"{decorator} needs an async function, but {name} is synchronous: "
            f"write 'async def {getattr(fn, '__name__', name)}(...)'"
        )


def _param_types(fn: Callable[..., Any], hints: dict[str, Any]) -> tuple[Any, ...]:
    types: list[Any] = []
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.KEYWORD_ONLY):
            raise DefinitionError(
                f"{fn.__qualname__}: parameter {param.name!r} must be positional; "
                "Temporal passes step and workflow arguments by position (use one model argument)"
            )
        types.append(hints.get(param.name, Any))
    return tuple(types)


def _check_local(local: object, heartbeat_timeout: object, local_retry_threshold: object) -> None:
    if not isinstance(local, bool):
        raise DefinitionError(f"local must be True or False, got {local!r}")
    if local and heartbeat_timeout is not None:
        raise DefinitionError(
            "heartbeat_timeout cannot be given with local=True: a local activity cannot heartbeat "
            "(drop heartbeat_timeout, or run the step as a regular activity)"
        )
    if local_retry_threshold is not None:
        if not local:
            raise DefinitionError("local_retry_threshold applies to local steps only: add local=True")
        _check_timedelta(local_retry_threshold, "local_retry_threshold")


@overload
def machine_step(fn: Callable[P, Coroutine[Any, Any, R]], /) -> MachineStep[P, R]: ...


@overload
def machine_step(
    *,
    name: str | None = None,
    timeout: timedelta | None = None,
    start_to_close_timeout: timedelta | None = None,
    schedule_to_close_timeout: timedelta | None = None,
    heartbeat_timeout: timedelta | None = None,
    max_attempts: int = 3,
    initial_interval: timedelta = timedelta(seconds=1),
    backoff: float = 2.0,
    max_interval: timedelta | None = None,
    non_retryable_errors: Sequence[str | type[BaseException]] = (),
    local: bool = False,
    local_retry_threshold: timedelta | None = None,
) -> Callable[[Callable[P, Coroutine[Any, Any, R]]], MachineStep[P, R]]: ...


def machine_step(
    fn: Any = None,
    /,
    *,
    name: str | None = None,
    timeout: timedelta | None = None,
    start_to_close_timeout: timedelta | None = None,
    schedule_to_close_timeout: timedelta | None = None,
    heartbeat_timeout: timedelta | None = None,
    max_attempts: int = 3,
    initial_interval: timedelta = timedelta(seconds=1),
    backoff: float = 2.0,
    max_interval: timedelta | None = None,
    non_retryable_errors: Sequence[str | type[BaseException]] = (),
    local: bool = False,
    local_retry_threshold: timedelta | None = None,
) -> Any:
    """Declare an async function as a machine step (a Temporal activity).

    Works bare (``@machine_step``) or with options. ``timeout`` is the start-to-close timeout
    of one attempt (default five minutes when no timeout is given). Retries follow
    Temporal's retry policy: ``max_attempts`` (0 means unlimited), ``initial_interval``,
    ``backoff`` (coefficient), ``max_interval`` and ``non_retryable_errors`` (exception
    classes or their names).

    ``local=True`` runs the step as a Temporal *local activity*: on the worker running the
    workflow, inside its workflow task, with no activity task and no workflow task of its own
    (cheaper and faster; ``docs/performance.md``). Only for steps that are

    - short: seconds, well under the workflow task timeout (the workflow task stays open
      while the step runs; signals and updates wait for it);
    - idempotent: a local activity's result is recorded only when its workflow task
      completes, so after a worker crash the step runs again even if it had succeeded
      (at least once, as a regular activity, but more likely to repeat);
    - without heartbeats (``heartbeat_timeout`` is refused with ``local=True``);
    - retried over short intervals: retries run in the worker until the next backoff
      exceeds ``local_retry_threshold`` (Temporal's default: one minute), later ones wait
      on a durable timer in the workflow;
    - fine on the workflow's worker: a local step is never routed to another task queue.

    Switching a step between local and regular changes the workflow's commands: instances
    in flight must keep the old setting (give the workflow a new version).
    """
    if timeout is not None and start_to_close_timeout is not None:
        raise DefinitionError("give either timeout= or start_to_close_timeout=, not both")
    start_to_close = timeout if timeout is not None else start_to_close_timeout
    for option, value in (
        ("timeout", start_to_close),
        ("schedule_to_close_timeout", schedule_to_close_timeout),
        ("heartbeat_timeout", heartbeat_timeout),
        ("initial_interval", initial_interval),
        ("max_interval", max_interval),
    ):
        _check_timedelta(value, option)
    _check_local(local, heartbeat_timeout, local_retry_threshold)
    if not isinstance(max_attempts, int) or isinstance(max_attempts, bool) or max_attempts < 0:
        raise DefinitionError(f"max_attempts must be an int >= 0 (0 = unlimited), got {max_attempts!r}")
    if not isinstance(backoff, int | float) or backoff < 1:
        raise DefinitionError(f"backoff must be a number >= 1, got {backoff!r}")
    error_names: list[str] = []
    for err in non_retryable_errors:
        if isinstance(err, type) and issubclass(err, BaseException):
            error_names.append(err.__name__)
        elif isinstance(err, str) and err:
            error_names.append(err)
        else:
            raise DefinitionError(f"non_retryable_errors takes exception classes or their names, got {err!r}")
    if start_to_close is None and schedule_to_close_timeout is None:
        start_to_close = timedelta(minutes=5)
    options = MachineStepOptions(
        start_to_close_timeout=start_to_close,
        schedule_to_close_timeout=schedule_to_close_timeout,
        heartbeat_timeout=heartbeat_timeout,
        max_attempts=max_attempts,
        initial_interval=initial_interval,
        backoff=float(backoff),
        max_interval=max_interval,
        non_retryable_errors=tuple(error_names),
        local=local,
        local_retry_threshold=local_retry_threshold,
    )

    def decorate(func: Callable[P, Coroutine[Any, Any, R]]) -> MachineStep[P, R]:
        _check_async(func, "@machine_step")
        step_name = _check_name(name or func.__name__, "step")
        hints = resolved_hints(func, "machine step")
        step: MachineStep[P, R] = MachineStep(
            fn=func,
            name=step_name,
            options=options,
            param_types=_param_types(func, hints),
            return_type=hints.get("return", Any),
        )
        registry.add_step(step)
        return step

    if fn is not None:
        return decorate(fn)
    return decorate


@overload
def human_step(
    *,
    form: type[F],
    name: str | None = None,
    title: ValueOrFn = None,
    description: ValueOrFn = None,
    assignee: ValueOrFn = None,
    assignee_group: ValueOrFn = None,
    due_in: timedelta | None = None,
    reminder_in: timedelta | None = None,
    on_due: DuePolicy | Sequence[Escalate | ChainEnd] | None = None,
    escalate_to: str | None = None,
    escalate_to_group: str | None = None,
    default: BaseModel | dict[str, Any] | None = None,
    require_claim: bool = False,
    quorum: None = None,
    voters: Sequence[str] | Callable[..., Any] | None = None,
    reject_on: RejectRule = "first",
    vote_field: str = "approved",
    exclude_starter: bool = False,
    exclude_steps: Sequence[str | HumanStep[..., Any]] = (),
    priority: int | Callable[..., Any] = 50,
    follow_up_in: timedelta | Callable[..., Any] | None = None,
    notify: Sequence[str] = (),
) -> Callable[[Callable[P, Any]], HumanStep[P, F]]: ...


@overload
def human_step(
    *,
    form: type[F],
    name: str | None = None,
    title: ValueOrFn = None,
    description: ValueOrFn = None,
    assignee: ValueOrFn = None,
    assignee_group: ValueOrFn = None,
    due_in: timedelta | None = None,
    reminder_in: timedelta | None = None,
    on_due: DuePolicy | Sequence[Escalate | ChainEnd] | None = None,
    escalate_to: str | None = None,
    escalate_to_group: str | None = None,
    default: BaseModel | dict[str, Any] | None = None,
    require_claim: bool = False,
    quorum: int,
    voters: Sequence[str] | Callable[..., Any] | None = None,
    reject_on: RejectRule = "first",
    vote_field: str = "approved",
    exclude_starter: bool = False,
    exclude_steps: Sequence[str | HumanStep[..., Any]] = (),
    priority: int | Callable[..., Any] = 50,
    follow_up_in: timedelta | Callable[..., Any] | None = None,
    notify: Sequence[str] = (),
) -> Callable[[Callable[P, Any]], HumanStep[P, QuorumDecision]]: ...


def human_step(
    *,
    form: type[F],
    name: str | None = None,
    title: ValueOrFn = None,
    description: ValueOrFn = None,
    assignee: ValueOrFn = None,
    assignee_group: ValueOrFn = None,
    due_in: timedelta | None = None,
    reminder_in: timedelta | None = None,
    on_due: DuePolicy | Sequence[Escalate | ChainEnd] | None = None,
    escalate_to: str | None = None,
    escalate_to_group: str | None = None,
    default: BaseModel | dict[str, Any] | None = None,
    require_claim: bool = False,
    quorum: int | None = None,
    voters: Sequence[str] | Callable[..., Any] | None = None,
    reject_on: RejectRule = "first",
    vote_field: str = "approved",
    exclude_starter: bool = False,
    exclude_steps: Sequence[str | HumanStep[..., Any]] = (),
    priority: int | Callable[..., Any] = 50,
    follow_up_in: timedelta | Callable[..., Any] | None = None,
    notify: Sequence[str] = (),
) -> Callable[[Callable[P, Any]], HumanStep[P, Any]]:
    """Declare a human step: a task for a person, answered with a pydantic form.

    The decorated function receives the step's input and may return the task's title (a
    string); when it returns anything else (``None``), ``title`` gives it, and without either
    the title is the step's name. A string the function returns always wins over ``title``;
    a function annotated ``-> str`` together with ``title=`` is refused (``title=`` could never
    apply), ``-> str | None`` with ``title=`` is a fallback. ``assignee``, ``assignee_group``, ``title`` and
    ``description`` are strings or functions of the step's input. ``due_in`` sets the task's
    due time; ``on_due`` says what happens then: ``"escalate"`` (to ``escalate_to`` /
    ``escalate_to_group``), ``"expire"`` (the step raises :class:`HumanTaskExpired`) or
    ``"complete"`` (with the ``default`` form value). ``reminder_in`` sends a reminder through
    the application's notification hook; it must be earlier than ``due_in``.

    ``on_due`` may also be an escalation chain, a list of :class:`sdk.Escalate` links
    optionally ending with ``"expire"`` or ``"complete"``: at the due time the task goes to the
    first link's user/group and is due again ``due_in`` later, then to the next link, and so
    on (see ``docs/escalation-and-notifications.md``). ``notify`` names notifiers registered
    on the worker (``create_worker(notifiers=[...])``) that receive this step's task events
    even when they do not listen to every step.

    Approval policies (``docs/approvals.md``):

    - ``quorum=N`` makes the task take votes instead of one completion: each eligible user
      (one of ``voters``, a list or a function of the input, else a member of
      ``assignee_group``) votes once with the form, whose boolean ``vote_field`` (default
      ``approved``) is the vote. The step returns a :class:`sdk.QuorumDecision` with every
      vote: approved once N approve; rejected at the first rejection (``reject_on="first"``)
      or once N approvals can no longer be reached (``"unreachable"``, needs ``voters``).
    - ``exclude_starter=True`` and ``exclude_steps=(...)`` (separation of duties): the user
      who started the instance, and whoever completed (or voted on) the named earlier steps,
      may not complete or vote on this task.
    - ``priority`` (0-100, default 50) and ``follow_up_in`` (a timedelta, or a function of
      the input returning a timedelta or an aware datetime): fixed or computed per task;
      the assignee or an administrator can change them later (audited).
    """
    if not (isinstance(form, type) and issubclass(form, BaseModel)):
        raise DefinitionError(
            f"form= must be a pydantic model class (class MyForm(BaseModel): ...), got {form!r}"
        )
    _check_timedelta(due_in, "due_in")
    _check_timedelta(reminder_in, "reminder_in")
    if due_in is not None and reminder_in is not None and reminder_in >= due_in:
        raise DefinitionError(
            f"reminder_in={reminder_in} is not earlier than due_in={due_in}: the reminder would "
            "come when the task is already due; give a shorter reminder_in= or drop it"
        )
    for option, value in (
        ("title", title),
        ("description", description),
        ("assignee", assignee),
        ("assignee_group", assignee_group),
    ):
        if value is not None and not (isinstance(value, str) or callable(value)):
            raise DefinitionError(f"{option}= must be a string or a function of the step's input")
    chain: EscalationChain | None = None
    policy: DuePolicy | None = None
    if isinstance(on_due, list | tuple):
        if due_in is None:
            raise DefinitionError("an escalation chain (on_due=[...]) needs due_in= (the first due time)")
        if escalate_to is not None or escalate_to_group is not None:
            raise DefinitionError(
                "escalate_to=/escalate_to_group= do not apply to a chain: give each "
                "Escalate(to=..., to_group=...) link its target"
            )
        chain = escalation_chain(on_due, has_default=default is not None)
    elif on_due in ("expire", "escalate", "complete"):
        policy = on_due
    elif on_due is not None:
        raise DefinitionError(
            f"on_due must be 'expire', 'escalate' or 'complete' (or a list of sdk.Escalate links), "
            f"got {on_due!r}"
        )
    if policy is not None and due_in is None:
        raise DefinitionError(f"on_due={policy!r} needs due_in= (when the task falls due)")
    if policy == "escalate" and not (escalate_to or escalate_to_group):
        raise DefinitionError("on_due='escalate' needs escalate_to= or escalate_to_group=")
    if isinstance(notify, str) or not all(isinstance(n, str) and n for n in notify):
        raise DefinitionError(f"notify= takes a list of notifier names, e.g. notify=['ops'], got {notify!r}")
    default_data: dict[str, Any] | None = None
    if default is not None:
        try:
            validated = form.model_validate(
                default.model_dump() if isinstance(default, BaseModel) else default
            )
        except Exception as exc:
            raise DefinitionError(f"default= is not a valid {form.__name__}: {exc}") from exc
        default_data = validated.model_dump(mode="json")
    if policy == "complete" and default_data is None:
        raise DefinitionError("on_due='complete' needs default= (the form value to complete with)")
    voter_list = _check_quorum(form, quorum, voters, reject_on, vote_field, assignee, assignee_group)
    if not isinstance(exclude_starter, bool):
        raise DefinitionError(f"exclude_starter must be True or False, got {exclude_starter!r}")
    if isinstance(exclude_steps, str):
        raise DefinitionError("exclude_steps= takes a sequence of step names, e.g. ('manager_approval',)")
    excluded_steps = tuple(
        s.name if isinstance(s, HumanStep) else _check_name(s, "step") for s in exclude_steps
    )
    if not callable(priority) and (
        not isinstance(priority, int) or isinstance(priority, bool) or not 0 <= priority <= 100
    ):
        raise DefinitionError(
            f"priority must be an int from 0 to 100 or a function of the input, got {priority!r}"
        )
    if not callable(follow_up_in):
        _check_timedelta(follow_up_in, "follow_up_in")
    options = HumanStepOptions(
        title=title,
        description=description,
        assignee=assignee,
        assignee_group=assignee_group,
        due_in=due_in,
        reminder_in=reminder_in,
        on_due=policy,
        escalate_to=escalate_to,
        escalate_to_group=escalate_to_group,
        default=default_data,
        require_claim=require_claim,
        quorum=quorum,
        voters=voter_list,
        reject_on=reject_on,
        vote_field=vote_field,
        exclude_starter=exclude_starter,
        exclude_steps=excluded_steps,
        priority=priority,
        follow_up_in=follow_up_in,
        escalation=chain,
        notify=tuple(notify),
    )

    def decorate(func: Callable[P, Any]) -> HumanStep[P, F]:
        if not callable(func):
            raise DefinitionError(f"@human_step must decorate a function, got {func!r}")
        if title is not None and _returns_str(func):
            raise DefinitionError(
                f"@human_step {func.__name__} both returns its title (-> str) and sets title=; "
                "drop title=, or annotate the function -> str | None to use title= when it returns None"
            )
        step = HumanStep(fn=func, name=_check_name(name or func.__name__, "step"), form=form, options=options)
        registry.add_step(step)
        return step

    return decorate


def _check_quorum(
    form: type[BaseModel],
    quorum: int | None,
    voters: Sequence[str] | Callable[..., Any] | None,
    reject_on: object,
    vote_field: str,
    assignee: ValueOrFn,
    assignee_group: ValueOrFn,
) -> tuple[str, ...] | Callable[..., Any] | None:
    """Validate the quorum options; returns ``voters`` as a tuple (or the function)."""
    if reject_on not in ("first", "unreachable"):
        raise DefinitionError(f"reject_on must be 'first' or 'unreachable', got {reject_on!r}")
    if quorum is None:
        if voters is not None:
            raise DefinitionError("voters= needs quorum= (how many approvals the task needs)")
        return None
    if not isinstance(quorum, int) or isinstance(quorum, bool) or quorum < 1:
        raise DefinitionError(f"quorum must be an int >= 1, got {quorum!r}")
    field = form.model_fields.get(vote_field)
    if field is None or field.annotation is not bool:
        raise DefinitionError(
            f"quorum= needs a boolean field {vote_field!r} in form {form.__name__} (the vote); "
            "add it, or name the form's boolean field with vote_field="
        )
    if assignee is not None:
        raise DefinitionError("a quorum task goes to voters= or assignee_group=, not to one assignee=")
    if voters is None:
        if assignee_group is None:
            raise DefinitionError(
                "quorum= needs voters= (a list or a function of the input) or assignee_group="
            )
        if reject_on == "unreachable":
            raise DefinitionError(
                "reject_on='unreachable' needs voters= (a group's size is not known to the workflow); "
                "list the voters, or use reject_on='first'"
            )
        return None
    if assignee_group is not None:
        raise DefinitionError("give voters= or assignee_group= for a quorum task, not both")
    if callable(voters):
        return voters
    if isinstance(voters, str) or not all(isinstance(v, str) and v for v in voters):
        raise DefinitionError(
            "voters= takes a list of user ids, e.g. ['ann', 'bob'], or a function of the input"
        )
    listed = tuple(dict.fromkeys(voters))
    if quorum > len(listed):
        raise DefinitionError(f"quorum={quorum} can never be reached by {len(listed)} voters")
    return listed


def _returns_str(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` is annotated to always return a string (``-> str``, not ``str | None``)."""
    try:
        returned = typing.get_type_hints(fn).get("return")
    except Exception:  # an unresolvable hint: fall back to its text
        returned = getattr(fn, "__annotations__", {}).get("return")
    return returned is str or returned == "str"


def workflow(
    *,
    name: str | None = None,
    version: str = "1.0.0",
    description: str | None = None,
    active: bool | None = None,
) -> Callable[[Callable[P, Coroutine[Any, Any, R]]], WorkflowDefinition[P, R]]:
    """Declare an async function composing steps as a versioned workflow.

    Each (name, version) compiles to its own Temporal workflow type ``name@version``, so
    several versions run side by side: new instances start the active version (the one
    marked ``active=True``, else the newest not marked ``active=False``), and running
    instances finish on the version they started with.
    """
    parse_version(version)

    def decorate(func: Callable[P, Coroutine[Any, Any, R]]) -> WorkflowDefinition[P, R]:
        _check_async(func, "@workflow")
        if "<locals>" in func.__qualname__:
            raise DefinitionError(
                f"@workflow function {func.__qualname__} is defined inside another function; "
                "define it at module level (the Temporal sandbox imports it by name)"
            )
        hints = resolved_hints(func, "workflow")
        definition: WorkflowDefinition[P, R] = WorkflowDefinition(
            fn=func,
            name=_check_name(name or func.__name__, "workflow"),
            version=version,
            description=description if description is not None else inspect.getdoc(func),
            active=active,
            param_types=_param_types(func, hints),
            return_type=hints.get("return", Any),
        )
        registry.add_workflow(definition)
        object.__setattr__(definition, "workflow_class", compile_workflow(definition))
        return definition

    return decorate
