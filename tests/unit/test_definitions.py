"""The decorators: what they build, and the DefinitionError each mistake raises when applied."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import timedelta
from types import ModuleType
from typing import Any

import pytest
from pydantic import BaseModel
from temporalio import workflow as temporal_workflow

from sdk import (
    DefinitionError,
    HumanStep,
    MachineStep,
    WorkflowDefinition,
    human_step,
    machine_step,
    registry,
)
from sdk import workflow as sdk_workflow
from tests.workflows import approvals


class Form(BaseModel):
    approved: bool


# -- DefinitionError at decoration time ---------------------------------------------------------


def test_machine_step_rejects_a_sync_function_bare_and_with_options() -> None:
    def charge(amount: int) -> int:
        return amount

    with pytest.raises(DefinitionError, match=r"needs an async function.*write 'async def charge\(...\)'"):
        machine_step(charge)
    with pytest.raises(DefinitionError, match=r"write 'async def charge\(...\)'"):
        machine_step(timeout=timedelta(seconds=1))(charge)
    assert "charge" not in registry.steps


def test_workflow_rejects_a_sync_function() -> None:
    def onboarding() -> None:
        return None

    with pytest.raises(DefinitionError, match=r"@workflow needs an async function.*'async def onboarding"):
        sdk_workflow(name="onboarding")(onboarding)
    assert registry.versions("onboarding") == []


@pytest.mark.parametrize("form", [dict, Form(approved=True), "Form", None])
def test_human_step_rejects_a_form_that_is_not_a_pydantic_model_class(form: Any) -> None:
    with pytest.raises(
        DefinitionError, match=r"form= must be a pydantic model class \(class MyForm\(BaseModel\)"
    ):
        human_step(form=form)


def test_duplicate_step_name_from_two_functions_names_the_fix() -> None:
    @machine_step(name="unit.duplicate")
    async def first(value: int) -> int:
        return value

    async def second(value: int) -> int:
        return value + 1

    with pytest.raises(DefinitionError) as raised:
        machine_step(name="unit.duplicate")(second)
    message = str(raised.value)
    assert "duplicate step name 'unit.duplicate'" in message
    assert "first" in message  # where the name is already used
    assert "name=..." in message  # the fix
    assert registry.steps["unit.duplicate"] is first


def test_duplicate_step_name_between_machine_and_human_step() -> None:
    @machine_step(name="unit.shared_name")
    async def compute(value: int) -> int:
        return value

    with pytest.raises(DefinitionError, match=r"duplicate step name 'unit\.shared_name'"):
        human_step(form=Form, name="unit.shared_name")(lambda value: "title")


def test_the_same_function_registered_twice_is_not_a_duplicate() -> None:
    # What a re-import of the author's module does (outside the sandbox, e.g. importlib.reload).
    async def enrich(value: int) -> int:
        return value

    one = machine_step(name="unit.reimported")(enrich)
    two = machine_step(name="unit.reimported")(enrich)
    assert one == two
    assert registry.steps["unit.reimported"] is two


WORKFLOW_SOURCE = """
from sdk import workflow

@workflow(name="unit.dup_workflow", version="1.0.0")
async def handle_order(order_id: str) -> str:
    return order_id
"""


def test_duplicate_workflow_name_and_version_in_two_modules(
    module_from_source: Callable[[str], ModuleType],
) -> None:
    first = module_from_source(WORKFLOW_SOURCE)
    with pytest.raises(DefinitionError) as raised:
        module_from_source(WORKFLOW_SOURCE)
    message = str(raised.value)
    assert "duplicate workflow 'unit.dup_workflow' version '1.0.0'" in message
    assert f"{first.__name__}.handle_order" in message
    assert "bump version=..." in message
    assert registry.get("unit.dup_workflow", "1.0.0") is first.handle_order


def test_same_workflow_name_with_another_version_is_fine(
    module_from_source: Callable[[str], ModuleType],
) -> None:
    module_from_source(WORKFLOW_SOURCE)
    module_from_source(WORKFLOW_SOURCE.replace('"1.0.0"', '"1.1.0"'))
    assert [d.version for d in registry.versions("unit.dup_workflow")] == ["1.0.0", "1.1.0"]


@pytest.mark.parametrize("version", ["", "1.x", "v1.0.0", "1.0.0.0", "one", "1..0", 1])
def test_bad_version_string(version: Any) -> None:
    with pytest.raises(
        DefinitionError, match=r"bad version string .*use a semantic version such as '1\.0\.0'"
    ):
        sdk_workflow(name="unit.versioned", version=version)


def test_workflow_defined_inside_a_function_is_refused() -> None:
    async def nested(order_id: str) -> str:
        return order_id

    with pytest.raises(DefinitionError) as raised:
        sdk_workflow(name="unit.nested")(nested)
    message = str(raised.value)
    assert "is defined inside another function" in message
    assert "define it at module level" in message
    assert registry.versions("unit.nested") == []


def _async_step(*, name: str) -> Callable[..., Any]:
    async def step(value: int) -> int:
        return value

    step.__name__ = name
    return step


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"timeout": timedelta(seconds=-1)}, "timeout must be a positive datetime.timedelta"),
        ({"timeout": 30}, "timeout must be a positive datetime.timedelta"),
        (
            {"timeout": timedelta(seconds=1), "start_to_close_timeout": timedelta(seconds=1)},
            "either timeout= or start_to_close_timeout=",
        ),
        ({"max_attempts": -1}, r"max_attempts must be an int >= 0 \(0 = unlimited\)"),
        ({"max_attempts": True}, "max_attempts must be an int"),
        ({"backoff": 0.5}, "backoff must be a number >= 1"),
        ({"non_retryable_errors": [42]}, "non_retryable_errors takes exception classes or their names"),
        ({"name": "has space"}, "bad step name 'has space'"),
        (
            {"local": True, "heartbeat_timeout": timedelta(seconds=5)},
            "heartbeat_timeout cannot be given with local=True: a local activity cannot heartbeat",
        ),
        ({"local": "yes"}, "local must be True or False"),
        (
            {"local_retry_threshold": timedelta(seconds=5)},
            "local_retry_threshold applies to local steps only",
        ),
        (
            {"local": True, "local_retry_threshold": timedelta(0)},
            "local_retry_threshold must be a positive datetime.timedelta",
        ),
    ],
)
def test_machine_step_option_errors(options: dict[str, Any], match: str) -> None:
    with pytest.raises(DefinitionError, match=match):
        machine_step(**options)(_async_step(name="unit_options"))


def test_a_zero_timeout_is_refused() -> None:
    with pytest.raises(DefinitionError, match=r"timeout must be a positive datetime\.timedelta"):
        machine_step(timeout=timedelta(0))(_async_step(name="unit_zero_timeout"))


def test_machine_step_parameters_must_be_positional() -> None:
    async def lookup(*, key: str) -> str:
        return key

    with pytest.raises(DefinitionError, match=r"parameter 'key' must be positional.*one model argument"):
        machine_step(lookup)


def test_unresolvable_type_hints_name_the_fix() -> None:
    async def uses_later_model(value: LaterModel) -> None:  # type: ignore[name-defined]  # noqa: F821
        return None

    with pytest.raises(DefinitionError, match="define the models it uses before the decorated function"):
        machine_step(uses_later_model)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"due_in": timedelta(seconds=-1)}, "due_in must be a positive datetime.timedelta"),
        ({"on_due": "expire"}, r"on_due='expire' needs due_in="),
        (
            {"on_due": "later", "due_in": timedelta(hours=1)},
            "on_due must be 'expire', 'escalate' or 'complete'",
        ),
        ({"on_due": "escalate", "due_in": timedelta(hours=1)}, "needs escalate_to= or escalate_to_group="),
        ({"on_due": "complete", "due_in": timedelta(hours=1)}, r"needs default= \(the form value"),
        ({"default": {"approved": "perhaps"}}, "default= is not a valid Form"),
        ({"assignee": 42}, "assignee= must be a string or a function of the step's input"),
        (
            {"due_in": timedelta(hours=1), "reminder_in": timedelta(hours=2)},
            r"reminder_in=2:00:00 is not earlier than due_in=1:00:00: .*give a shorter reminder_in=",
        ),
        ({"due_in": timedelta(hours=1), "reminder_in": timedelta(hours=1)}, "is not earlier than due_in="),
    ],
)
def test_human_step_option_errors(options: dict[str, Any], match: str) -> None:
    with pytest.raises(DefinitionError, match=match):
        human_step(form=Form, **options)


def test_a_reminder_before_the_due_time_or_without_one_is_accepted() -> None:
    hour = timedelta(hours=1)
    early = human_step(form=Form, name="unit.early", due_in=2 * hour, reminder_in=hour)
    alone = human_step(form=Form, name="unit.alone", reminder_in=timedelta(hours=5))
    assert early(lambda value: None).options.reminder_in == timedelta(hours=1)
    assert alone(lambda value: None).options.reminder_in == timedelta(hours=5)


def test_title_option_with_a_body_that_always_returns_the_title_is_refused() -> None:
    def approve(value: int) -> str:
        return f"Approve {value}"

    with pytest.raises(DefinitionError, match=r"returns its title \(-> str\) and sets title=; drop title="):
        human_step(form=Form, name="unit.both_titles", title="Fixed")(approve)
    assert "unit.both_titles" not in registry.steps


def test_title_option_is_the_fallback_of_a_body_that_may_return_none() -> None:
    def maybe(value: int) -> str | None:
        return None

    def untyped(value):  # type: ignore[no-untyped-def]  # no annotation: decided at run time
        return None

    def returns_nothing(value: int) -> None:
        return None

    for fn, name in ((maybe, "unit.maybe"), (untyped, "unit.untyped"), (returns_nothing, "unit.nothing")):
        assert human_step(form=Form, name=name, title="Fixed")(fn).options.title == "Fixed"
    assert human_step(form=Form, name="unit.only_body")(lambda value: "t").options.title is None


def test_definition_error_is_a_type_error() -> None:
    # Generic handlers for misuse (``except TypeError``) still catch it.
    assert issubclass(DefinitionError, TypeError)


# -- What the decorators build -------------------------------------------------------------------


def test_machine_step_without_parentheses_uses_the_defaults() -> None:
    @machine_step
    async def unit_bare(value: int) -> int:
        return value * 2

    assert isinstance(unit_bare, MachineStep)
    assert unit_bare.name == "unit_bare"
    assert unit_bare.options.start_to_close_timeout == timedelta(minutes=5)
    assert unit_bare.options.max_attempts == 3
    assert unit_bare.param_types == (int,)
    assert unit_bare.return_type is int
    assert registry.steps["unit_bare"] is unit_bare


def test_machine_step_with_empty_parentheses_equals_bare() -> None:
    @machine_step()
    async def unit_parens(value: int) -> int:
        return value

    assert isinstance(unit_parens, MachineStep)
    assert unit_parens.options.start_to_close_timeout == timedelta(minutes=5)
    assert unit_parens.options.max_attempts == 3


class RateLimited(Exception):
    pass


def test_machine_step_options_become_the_temporal_retry_policy() -> None:
    @machine_step(
        name="unit.charge",
        timeout=timedelta(seconds=7),
        max_attempts=4,
        initial_interval=timedelta(milliseconds=100),
        backoff=1.5,
        max_interval=timedelta(seconds=2),
        non_retryable_errors=[RateLimited, "CardDeclined"],
    )
    async def charge(amount: int) -> str:
        return f"charged {amount}"

    assert charge.name == "unit.charge"
    assert charge.options.start_to_close_timeout == timedelta(seconds=7)
    policy = charge.options.retry_policy()
    assert policy.maximum_attempts == 4
    assert policy.initial_interval == timedelta(milliseconds=100)
    assert policy.backoff_coefficient == 1.5
    assert policy.maximum_interval == timedelta(seconds=2)
    assert policy.non_retryable_error_types == ["RateLimited", "CardDeclined"]
    assert charge.to_json()["options"]["start_to_close_timeout"] == 7.0


def test_a_local_step_keeps_the_regular_defaults_and_says_it_is_local() -> None:
    @machine_step(local=True, local_retry_threshold=timedelta(seconds=10))
    async def unit_local(value: int) -> int:
        return value

    @machine_step
    async def unit_remote(value: int) -> int:
        return value

    assert unit_local.options.local and not unit_remote.options.local
    assert unit_local.options.start_to_close_timeout == timedelta(minutes=5)
    assert unit_local.options.retry_policy() == unit_remote.options.retry_policy()
    assert unit_local.to_json()["options"]["local"] is True
    assert unit_local.to_json()["options"]["local_retry_threshold"] == 10.0
    assert unit_remote.to_json()["options"]["local"] is False


def test_schedule_to_close_alone_leaves_start_to_close_unset() -> None:
    @machine_step(schedule_to_close_timeout=timedelta(minutes=1))
    async def unit_bounded(value: int) -> int:
        return value

    assert unit_bounded.options.start_to_close_timeout is None
    assert unit_bounded.options.schedule_to_close_timeout == timedelta(minutes=1)


async def test_outside_a_workflow_a_machine_step_is_a_plain_awaitable_function() -> None:
    calls: list[int] = []

    @machine_step(timeout=timedelta(seconds=1))
    async def unit_double(value: int) -> int:
        calls.append(value)
        return value * 2

    pending = unit_double(21)
    assert inspect.iscoroutine(pending)
    assert await pending == 42
    assert await unit_double(value=5) == 10  # keywords work too
    assert calls == [21, 5]


def test_outside_a_workflow_a_human_step_refuses_to_run_and_points_at_fn() -> None:
    with pytest.raises(
        RuntimeError, match=r"human step 'tests\.review_step' can only be awaited inside a workflow"
    ):
        approvals.review(approvals.Request(subject="laptop", amount=1))
    assert approvals.review.fn(approvals.Request(subject="laptop", amount=1)) == "Review laptop"


def test_outside_a_workflow_the_human_step_hint_is_valid_python() -> None:
    with pytest.raises(RuntimeError, match=r"call review\.fn\(\.\.\.\)"):
        approvals.review(approvals.Request(subject="laptop", amount=1))


def test_human_step_definition_and_its_json() -> None:
    assert isinstance(approvals.review, HumanStep)
    assert approvals.review.form is approvals.Decision
    described = approvals.review.to_json()
    assert described["type"] == "HUMAN"
    assert described["form"] == "Decision"
    assert described["form_schema"]["required"] == ["approved"]
    assert described["options"]["assignee_group"] == "reviewers"
    assert described["options"]["description"] == "<computed>"


def test_workflow_definition_compiles_to_a_module_global_temporal_workflow() -> None:
    definition = approvals.versioned_v2
    assert isinstance(definition, WorkflowDefinition)
    assert definition.workflow_type == "tests.versioned@2.0.0"
    cls = definition.workflow_class
    assert temporal_workflow._Definition.must_from_class(cls).name == "tests.versioned@2.0.0"
    # The sandbox imports the class by name from the author's module.
    assert getattr(approvals, cls.__name__) is cls
    assert cls.__module__ == approvals.__name__
    assert "<locals>" not in cls.__qualname__
    assert approvals.versioned_v1.workflow_class is not cls
    assert [step.name for step in definition.steps()] == ["tests.shout_subject", "tests.version_gate"]
    described = definition.to_json()
    assert described["workflow_type"] == "tests.versioned@2.0.0"
    assert [step["type"] for step in described["steps"]] == ["MACHINE", "HUMAN"]


def test_workflow_description_defaults_to_the_docstring(
    module_from_source: Callable[[str], ModuleType],
) -> None:
    module = module_from_source(
        '''
        from sdk import workflow

        @workflow(name="unit.documented")
        async def documented() -> None:
            """Onboard a new hire."""
        '''
    )
    assert module.documented.description == "Onboard a new hire."
    assert module.documented.version == "1.0.0"
    assert registry.get("unit.documented") is module.documented


def test_a_compiled_class_has_the_definition_temporalio_would_give_it() -> None:
    """Compiled classes after the first copy the first one's handlers instead of running
    ``workflow.defn`` (sdk/_compiler.py): each must equal what ``workflow.defn`` builds."""
    import dataclasses

    from examples.expense_approval import expense_approval, large_expense_approval
    from sdk._workflow_base import DurableWorkflowBase

    # Return types differ (a copied one would show): a model, list[bool], str.
    definitions = (expense_approval, large_expense_approval, approvals.two_reviews, approvals.versioned_v1)
    assert len({d.return_type for d in definitions}) == 3
    for definition in definitions:
        compiled = definition.workflow_class
        got = temporal_workflow._Definition.must_from_class(compiled)
        run = compiled.__dict__["run"]

        # The same class built again, defined by temporalio itself (a run method of its own,
        # so the compiled class's run keeps its definition).
        async def again(self: Any, *args: Any) -> Any: ...  # pragma: no cover - never run

        again.__signature__ = run.__signature__  # type: ignore[attr-defined]
        again.__annotations__ = dict(run.__annotations__)
        again.__name__ = "run"
        again.__qualname__ = run.__qualname__
        again.__module__ = run.__module__
        fresh_cls = type(
            compiled.__name__,
            (DurableWorkflowBase,),
            {"run": temporal_workflow.run(again), "__module__": compiled.__module__},
        )
        temporal_workflow.defn(name=definition.workflow_type)(fresh_cls)
        fresh = temporal_workflow._Definition.must_from_class(fresh_cls)
        assert got.cls is compiled and got.run_fn is run
        assert temporal_workflow._Definition.must_from_run_fn(run) is got
        assert got.name == fresh.name == definition.workflow_type
        assert set(got.signals) == set(fresh.signals) and set(got.signals)
        assert all(got.signals[k].fn is fresh.signals[k].fn for k in fresh.signals)
        assert set(got.queries) == set(fresh.queries) and set(got.updates) == set(fresh.updates)
        assert all(got.updates[k].fn is fresh.updates[k].fn for k in fresh.updates)
        assert all(got.queries[k].fn is fresh.queries[k].fn for k in fresh.queries)
        assert (got.arg_types, got.ret_type) == (fresh.arg_types, fresh.ret_type)
        assert got.ret_type == definition.return_type
        for field in dataclasses.fields(fresh):
            if field.name not in ("cls", "run_fn", "signals", "queries", "updates"):
                assert getattr(got, field.name) == getattr(fresh, field.name), field.name


def test_a_class_compiled_after_the_first_is_not_inspected_by_workflow_defn(monkeypatch: Any) -> None:
    import sdk._compiler as compiler
    from examples.expense_approval import expense_approval
    from sdk._workflow_base import DurableWorkflowBase

    assert compiler._template is not None  # the examples' classes were compiled on import
    calls: list[str] = []
    monkeypatch.setattr(temporal_workflow, "defn", lambda **kw: calls.append(kw["name"]))
    template_run = compiler._template.cls.__dict__["run"]

    async def run(self: Any, *args: Any) -> Any: ...  # pragma: no cover - never run

    run.__annotations__ = dict(template_run.__annotations__)
    run.__qualname__ = "_dwf_probe.run"
    cls = type("_dwf_probe", (DurableWorkflowBase,), {"run": temporal_workflow.run(run)})
    compiler._define(cls, "probe@1.0.0")
    assert calls == []
    defn = temporal_workflow._Definition.must_from_class(cls)
    assert (defn.name, defn.cls, defn.run_fn) == ("probe@1.0.0", cls, cls.__dict__["run"])
    # A class with a member of its own is not a compiled class: temporalio defines it.
    odd = type("_dwf_odd", (DurableWorkflowBase,), {"run": temporal_workflow.run(run), "extra": 1})
    assert not compiler._reusable(compiler._template, odd)
    assert compiler._reusable(compiler._template, expense_approval.workflow_class)


async def test_workflow_runs_leave_no_copy_of_their_module_in_the_sdk_s_caches() -> None:
    """The sandbox imports the author's module again for every run: a process-wide cache keyed
    by its classes (the forms' JSON schemas, the input adapters) must not keep every run's copy
    alive. 30 replays of the example's recorded history, each a new run in the real sandbox."""
    import gc
    import json
    from collections.abc import AsyncIterator
    from pathlib import Path

    from temporalio.client import WorkflowHistory
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.worker import Replayer

    from examples.expense_approval import expense_approval
    from sdk import _definition, _inputs
    from sdk.runtime import sandbox_runner
    from worker import worker_components

    recorded = Path(__file__).parents[1] / "histories" / "expense_approval-1.0.0-rejected.json"
    history = WorkflowHistory.from_json("leak", json.loads(recorded.read_text()))
    classes, _ = worker_components([expense_approval])
    replayer = Replayer(
        workflows=classes, workflow_runner=sandbox_runner(), data_converter=pydantic_data_converter
    )

    async def histories() -> AsyncIterator[WorkflowHistory]:
        for i in range(30):
            yield WorkflowHistory(f"leak-{i}", history.events)

    before = _inputs._adapter.cache_info().currsize
    results = await replayer.replay_workflows(histories(), raise_on_replay_failure=False)
    assert not results.replay_failures
    gc.collect()
    # Each run validated an Expense and built a form schema for the approval task's form.
    assert _inputs._adapter.cache_info().currsize == before
    # Form schemas: the cache must not be what keeps a form class alive (other holders, such as
    # temporalio's converter cache or a worker's sticky cache, may keep a run's copy a while).
    import weakref

    from sdk._definition import _form_schema

    class Form(BaseModel):
        comment: str

    assert _form_schema(Form)["properties"]["comment"]["type"] == "string"
    assert _form_schema(Form) is _form_schema(Form)  # cached while the class lives
    gone = weakref.ref(Form)
    del Form
    gc.collect()
    assert gone() is None
    assert not [form for form in _definition._FORM_SCHEMAS if form.__qualname__.endswith("<locals>.Form")]


def test_only_input_types_every_run_shares_are_cached() -> None:
    import enum
    from typing import Annotated, Literal

    from pydantic import Field

    from sdk._inputs import _shared

    class Colour(enum.Enum):
        RED = "red"

    class Point(BaseModel):
        x: int

    shared = [int, str, Any, list[str], dict[str, Any], int | None, tuple[int, ...], Literal["a", 1]]
    own = [Colour, Point, list[Point], Point | None, Literal[Colour.RED], Annotated[int, Field(gt=0)]]
    assert [_shared(t) for t in shared] == [True] * len(shared)
    assert [_shared(t) for t in own] == [False] * len(own)
