"""What the SDK and its SQL mirror cost: throughput, mirror lag and inbox query latency.

One process, one Temporal dev server (started here, stopped at the end):

1. ``plain``: the expense-approval scenario (validate activity, wait for an approval signal,
   pay activity) written directly with temporalio (``bench/plain_expense.py``), the pydantic
   data converter and the SDK's sandbox runner; N concurrent instances; one shared lister finds
   the instances waiting for an approval through Temporal's visibility API (a search
   attribute), each driver signals its own and awaits the result. ``plain-nolist``: the same
   without asking (each driver signals right after the start). See ``plain_run``.
2. ``sdk+sqlite`` / ``sdk+postgresql``: ``examples.expense_approval`` through the SDK with the
   mirror on a temporary SQLite file, then on a fresh PostgreSQL database; each driver learns
   of its task from the mirror (one shared inbox poller, ``MirrorQueries.pending_tasks``),
   completes it with ``InstanceHandle.signal_complete_task`` and awaits the result.
   Then a few instances at a steady rate, to see the mirror's lag when nothing queues.
3. With the worker stopped, the task table is filled to ``--query-rows`` rows and the
   pending-tasks queries (``MirrorQueries.inbox`` and ``pending_tasks``) are timed.

Run from the repository root: ``.venv/bin/python bench/mirror_overhead.py [--quick]`` (or
``python -m bench.mirror_overhead``). This module is the command line and the run's order;
the parts live beside it: ``figures`` (targets, statistics, result records), ``cpu`` (where
the CPU went), ``drivers`` (instances started, polled, awaited), ``plain_run`` and ``sdk_run``
(one per system measured), ``query_latency``, ``environment`` (logs, runtime, databases) and
``report``.
See bench/README.md for what each figure means. Exit status 0 unless something failed
(the targets are informational).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence

if not __package__:  # run as a script: make the repository root importable, for ``bench``
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.cpu import CpuMeter
from bench.environment import (
    LOGS,
    Env,
    connect_with_retry,
    create_database,
    drop_database,
    quiet_runtime,
    signal_clock,
)
from bench.figures import ConfigResult, ThroughputResult
from bench.plain_run import run_plain
from bench.report import print_config, report, report_rounds
from bench.sdk_run import VARIANTS, run_sdk


async def amain(args: argparse.Namespace) -> int:
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter

    from sdk import DevServer, WorkflowClient

    run_id = uuid.uuid4().hex[:8]
    results: dict[str, ConfigResult] = {}
    rounds: dict[str, list[ThroughputResult]] = {}
    failures: list[str] = []
    pg_name = f"dwf_bench_{run_id}"
    pg_created: list[str] = []
    tmpdir = __import__("tempfile").TemporaryDirectory(prefix="dwf-bench-")
    from bench.figures import loadavg

    print(
        f"mirror_overhead: load average {loadavg()}, {args.instances} instances, "
        f"{args.query_rows:,} query rows, "
        f"SDK drivers wait via {args.sdk_wait}, run {run_id}",
        flush=True,
    )
    try:
        async with DevServer() as server:
            print(f"  dev server pid {server.pid} on {server.target}", flush=True)
            clock = signal_clock()
            runtime = quiet_runtime()
            plain_client = await connect_with_retry(
                lambda: Client.connect(server.target, data_converter=pydantic_data_converter, runtime=runtime)
            )
            sdk_client = await connect_with_retry(
                lambda: WorkflowClient.connect(server.target, interceptors=[clock], runtime=runtime)
            )
            env = Env(args, run_id, CpuMeter(server.pid), plain_client, sdk_client, clock)
            configs: list[tuple[str, Callable[[], Awaitable[ConfigResult]]]] = []
            if not args.skip_plain:
                configs.append(("plain", lambda: run_plain(env, "list")))
                if not args.skip_nolist:
                    configs.append(("plain-nolist", lambda: run_plain(env, "nolist")))
                if args.plain_query:
                    configs.append(("plain-query", lambda: run_plain(env, "query")))
            # Each round writes a fresh mirror database: the first round's query timing fills
            # its own with 100,000 task rows, which would slow the writes of a later round.
            round_no = 0
            if not args.skip_sqlite:

                async def sqlite() -> ConfigResult:
                    url = f"sqlite+aiosqlite:///{tmpdir.name}/mirror-{round_no}.db"
                    return await run_sdk(env, "sqlite", url)

                configs.append(("sdk+sqlite", sqlite))
            if not args.skip_postgres:

                async def postgres() -> ConfigResult:
                    name = f"{pg_name}_{round_no}"
                    url = await create_database(args.postgres_url, name)
                    pg_created.append(name)
                    return await run_sdk(env, "postgresql", url)

                configs.append(("sdk+postgresql", postgres))
                for variant in args.variants:

                    async def postgres_variant(variant: str = variant) -> ConfigResult:
                        name = f"{pg_name}_{round_no}_{variant}"
                        url = await create_database(args.postgres_url, name)
                        pg_created.append(name)
                        return await run_sdk(env, "postgresql", url, variant)

                    configs.append((f"sdk+postgresql/{variant}", postgres_variant))
            for round_no in range(args.rounds):
                if round_no == 1:  # later rounds time the throughput only
                    args.query_rows, args.lag_instances = 0, 0
                # Rotate the order each round: the dev server slows as its history grows, and
                # a configuration always run last would pay for it.
                shift = round_no % len(configs) if configs else 0
                for name, run in configs[shift:] + configs[:shift]:
                    label = f"{name} (round {round_no + 1} of {args.rounds})" if args.rounds > 1 else name
                    print(f"\n== {label} ...", flush=True)
                    logs_before = Counter(LOGS.counts)
                    try:
                        result = await run()
                        result.throughput.logs = LOGS.since(logs_before)
                    except Exception as exc:
                        import traceback

                        traceback.print_exc()
                        failures.append(f"{label}: {type(exc).__name__}: {exc}")
                        continue
                    results.setdefault(name, result)
                    rounds.setdefault(name, []).append(result.throughput)
                    print_config(name, result)
            await sdk_client.close()
            print("\nStopping the dev server.", flush=True)
    finally:
        for name in pg_created:
            try:
                await drop_database(args.postgres_url, name)
            except Exception as exc:
                failures.append(f"dropping database {name}: {exc}")
        tmpdir.cleanup()
    failures += report(args, results)
    if args.rounds > 1:
        report_rounds(rounds)
    if failures:
        print(f"\n{len(failures)} problem(s):")
        for problem in failures[:20]:
            print(f"  {problem}")
    return 1 if failures else 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--instances", type=int, default=300, help="concurrent instances per configuration")
    parser.add_argument("--query-rows", type=int, default=100_000, help="task rows for the query timing")
    parser.add_argument("--query-runs", type=int, default=200, help="timed runs of each query")
    parser.add_argument("--skip-postgres", action="store_true", help="no PostgreSQL configuration")
    parser.add_argument("--skip-sqlite", action="store_true", help="no SQLite configuration")
    parser.add_argument("--skip-plain", action="store_true", help="no plain baseline (for profiling the SDK)")
    parser.add_argument(
        "--skip-nolist", action="store_true", help="no plain-nolist baseline (drivers that never list)"
    )
    parser.add_argument(
        "--plain-query", action="store_true", help="also the plain baseline polling a query per instance"
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "DWF_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
        ),
        help="maintenance database; a fresh database is created next to it and dropped at the end",
    )
    parser.add_argument(
        "--sdk-wait",
        choices=("mirror", "state"),
        default="mirror",
        help="how SDK drivers learn of their task: the mirror's inbox (default) or the state query",
    )
    parser.add_argument(
        "--variant",
        dest="variants",
        action="append",
        default=[],
        choices=sorted(VARIANTS),
        help="also run the PostgreSQL configuration without one part, to measure its cost (repeatable)",
    )
    parser.add_argument("--poll-interval", type=float, default=0.05, help="inbox poll interval, seconds")
    parser.add_argument(
        "--lag-samples", type=int, default=20, help="instances probed end to end during the throughput run"
    )
    parser.add_argument(
        "--lag-instances", type=int, default=20, help="instances of the light-load lag run (all probed)"
    )
    parser.add_argument("--lag-rate", type=float, default=4.0, help="starts per second of the lag run")
    parser.add_argument(
        "--writer-pool-size",
        type=int,
        default=0,
        help="connections of the mirror writer's engine (default: SQLAlchemy's pool, 5 + 10 overflow)",
    )
    parser.add_argument(
        "--workflow-task-pollers",
        type=int,
        default=0,
        help="workers' maximum concurrent workflow-task polls (default: temporalio's, 5)",
    )
    parser.add_argument("--warmup", type=int, default=10, help="untimed instances before each run")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run the configurations this many times, interleaved (later rounds: throughput only)",
    )
    parser.add_argument("--timeout", type=float, default=240.0, help="per-instance timeout, seconds")
    parser.add_argument("--quick", action="store_true", help="smoke run: 30 instances, 10,000 rows")
    args = parser.parse_args(argv)
    if args.quick:
        args.instances = min(args.instances, 30)
        args.query_rows = min(args.query_rows, 10_000)
        args.warmup = min(args.warmup, 3)
        args.lag_samples = min(args.lag_samples, 10)
        args.lag_instances = min(args.lag_instances, 10)
    return args


def main() -> None:
    import logging

    logging.basicConfig(level=logging.WARNING, format="  [log] %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(LOGS)
    args = parse_args()
    # Commands are signed: the benchmark's clients and workers share a key (unless one is set).
    from sdk.runtime import dev_signing_key

    dev_signing_key()
    code = asyncio.run(amain(args))
    time.sleep(1.0)  # let temporalio's Rust threads wind down (docs/temporal-facts.md)
    sys.stdout.flush()
    sys.exit(code)


if __name__ == "__main__":
    main()
