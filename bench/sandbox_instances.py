"""What the workflow sandbox costs per workflow run, and what passing modules through saves.

Every time a worker creates a workflow run (its first workflow task, or a replay after the
sticky cache let the instance go), temporalio's sandbox imports the workflow's module again:
the author's module runs once more (its pydantic models built, each ``@workflow`` compiled).
This benchmark replays one recorded history of ``examples.expense_approval`` (a rejected
expense: validate, the approval, the end) ``--replays`` times in one process with temporalio's
``Replayer``, no server, in interleaved rounds (the order rotated each round), under three
settings:

- ``defn-each``: every compiled class defined by temporalio's ``workflow.defn`` (the SDK
  before it copied the first class's handlers: ``sdk/_compiler.py``);
- ``default``: the SDK as it ships;
- ``passthrough``: the example module passed through the sandbox as well
  (``create_worker(sandbox_passthrough=["examples.expense_approval"])``): imported once per
  process, never again per run.

It prints, per setting, the CPU time per replay (the whole run: instance creation, three
activations, payload conversion) and per instance creation (the sandbox's import alone),
medians of the rounds, and the load average. CPU time, not wall-clock time: it does not move
with the machine's load.

    .venv/bin/python bench/sandbox_instances.py [--replays 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

if not __package__:  # run as a script: make the repository root importable, for ``bench``
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.figures import loadavg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HISTORY = os.path.join(ROOT, "tests", "histories", "expense_approval-1.0.0-rejected.json")
SETTINGS = ("defn-each", "default", "passthrough")


class CreationClock:
    """CPU time spent in the sandbox's instance creation (its import of the workflow module)."""

    def __init__(self) -> None:
        from temporalio.worker.workflow_sandbox import _runner

        self.spent = 0.0
        self.count = 0
        original: Callable[[Any], None] = _runner._Instance._create_instance

        def timed(instance: Any) -> None:
            began = time.process_time()
            try:
                original(instance)
            finally:
                self.spent += time.process_time() - began
                self.count += 1

        _runner._Instance._create_instance = timed  # type: ignore[method-assign,assignment]

    def take(self) -> tuple[float, int]:
        taken = (self.spent, self.count)
        self.spent, self.count = 0.0, 0
        return taken


async def replay(setting: str, replays: int, clock: CreationClock) -> tuple[float, float]:
    """CPU ms per replay and per instance creation, ``replays`` replays under ``setting``."""
    from temporalio.client import WorkflowHistory
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.worker import Replayer

    import sdk._compiler as compiler
    from examples.expense_approval import expense_approval
    from sdk.runtime import sandbox_runner
    from worker import worker_components

    with open(HISTORY) as f:
        history = WorkflowHistory.from_json("bench", json.load(f))
    classes, _ = worker_components([expense_approval])
    extra = ["examples.expense_approval"] if setting == "passthrough" else []
    replayer = Replayer(
        workflows=classes, workflow_runner=sandbox_runner(extra), data_converter=pydantic_data_converter
    )

    async def histories() -> AsyncIterator[WorkflowHistory]:
        for i in range(replays):
            yield WorkflowHistory(f"bench-{i}", history.events)

    reusable = compiler._reusable
    if setting == "defn-each":
        compiler._reusable = lambda template, cls: False
    clock.take()
    began = time.process_time()
    try:
        results = await replayer.replay_workflows(histories(), raise_on_replay_failure=False)
    finally:
        compiler._reusable = reusable
    spent = time.process_time() - began
    created, count = clock.take()
    if results.replay_failures:
        raise RuntimeError(f"{setting}: {next(iter(results.replay_failures.values()))}")
    return 1000 * spent / replays, 1000 * created / max(count, 1)


async def run(args: argparse.Namespace) -> int:
    print(
        f"sandbox instances: {args.replays} replays of one expense_approval history per setting, "
        f"{args.rounds} rounds; load average {loadavg()}",
        flush=True,
    )
    clock = CreationClock()
    await replay("default", 20, clock)  # warm-up: imports, bytecode, the template
    figures: dict[str, list[tuple[float, float]]] = {s: [] for s in SETTINGS}
    for round_ in range(args.rounds):
        order = SETTINGS[round_ % 3 :] + SETTINGS[: round_ % 3]
        for setting in order:
            figures[setting].append(await replay(setting, args.replays, clock))
        print(
            f"  round {round_ + 1}: "
            + ", ".join(f"{s} {figures[s][-1][0]:.1f} / {figures[s][-1][1]:.2f} ms" for s in order)
            + f"; load {loadavg()}",
            flush=True,
        )
    print("\nsetting       CPU ms per replay  CPU ms per instance creation  (median of the rounds)")
    for setting in SETTINGS:
        per_replay = statistics.median(f[0] for f in figures[setting])
        per_create = statistics.median(f[1] for f in figures[setting])
        print(f"  {setting:<11} {per_replay:17.1f}  {per_create:28.2f}")
    print(f"load average {loadavg()}")
    return 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--replays", type=int, default=200, help="replays per setting and round")
    parser.add_argument("--rounds", type=int, default=3)
    return parser.parse_args(argv)


def main() -> None:
    sys.exit(asyncio.run(run(parse_args())))


if __name__ == "__main__":
    main()
