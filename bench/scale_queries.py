"""``bench/scale.py queries``: inbox and pending-task query latency at 10k, 100k and 1M task rows.

The first 10,000 rows are synthetic (``query_latency.synthetic_rows``: varied tenants, groups,
assignees, statuses, due dates); the table then grows in SQL, each round copying up to as many
rows as it holds with fresh ids (``INSERT ... SELECT``), so the distribution stays the same.
Then ``ANALYZE`` and the timed calls of ``query_latency.query_bench``.
"""

from __future__ import annotations

import argparse
import random
import time
import types
from typing import Any, cast

from bench.figures import TARGET_QUERY_P95, loadavg, p50_p95, quantile, verdict


async def grow(engine: Any, total: int) -> float:
    """Copy task rows (with their instance and step rows, fresh ids) until ``total``; seconds."""
    from sqlalchemy import Table, column, func, insert, literal, select, table, text
    from sqlalchemy import cast as sql_cast
    from sqlalchemy.types import String, Uuid

    from sdk.mirror import HumanTaskModel, StepExecutionModel, WorkflowInstanceModel

    instances = cast(Table, WorkflowInstanceModel.__table__)
    steps = cast(Table, StepExecutionModel.__table__)
    tasks = cast(Table, HumanTaskModel.__table__)
    grown = table(
        "dwf_bench_grow",
        column("task_id", Uuid()),
        column("instance_id", Uuid()),
        column("step_id", Uuid()),
        column("new_task", Uuid()),
        column("new_instance", Uuid()),
        column("new_step", Uuid()),
    )
    started = time.perf_counter()
    while True:
        async with engine.begin() as conn:
            count = (await conn.execute(select(func.count()).select_from(tasks))).scalar_one()
            if count >= total:
                break
            await conn.execute(text("DROP TABLE IF EXISTS dwf_bench_grow"))
            await conn.execute(
                text(
                    "CREATE TEMP TABLE dwf_bench_grow AS SELECT id AS task_id, instance_id, "
                    "step_execution_id AS step_id, gen_random_uuid() AS new_task, "
                    "gen_random_uuid() AS new_instance, gen_random_uuid() AS new_step "
                    "FROM workflow_human_tasks ORDER BY id LIMIT :n"
                ),
                {"n": min(count, total - count)},
            )
            new_workflow_id = literal("seed-") + sql_cast(grown.c.new_instance, String)
            replaced_instances = {
                "id": grown.c.new_instance,
                "workflow_id": new_workflow_id,
                "run_id": sql_cast(grown.c.new_instance, String),
            }
            replaced_steps = {
                "id": grown.c.new_step,
                "instance_id": grown.c.new_instance,
                "workflow_id": new_workflow_id,
            }
            replaced_tasks = {
                "id": grown.c.new_task,
                "instance_id": grown.c.new_instance,
                "step_execution_id": grown.c.new_step,
                "workflow_id": new_workflow_id,
            }
            for target, key, replaced in (
                (instances, grown.c.instance_id, replaced_instances),
                (steps, grown.c.step_id, replaced_steps),
                (tasks, grown.c.task_id, replaced_tasks),
            ):
                names = [c.name for c in target.columns]
                chosen = [replaced.get(name, target.c[name]).label(name) for name in names]
                source = select(*chosen).select_from(grown.join(target, target.c.id == key))
                await conn.execute(insert(target).from_select(names, source))
            await conn.execute(text("DROP TABLE dwf_bench_grow"))
    async with engine.begin() as conn:
        await conn.execute(text("ANALYZE"))
    return time.perf_counter() - started


async def queries(args: argparse.Namespace) -> int:
    from bench.query_latency import query_bench, seed
    from bench.scale import Setup
    from examples.expense_approval import expense_approval
    from sdk.mirror import MirrorQueries, session_factory
    from sdk.mirror._projection import definition_id_for

    print(f"scale queries: task rows {args.rows}; load average {loadavg()}", flush=True)
    results = []
    async with Setup(args) as setup:
        definition_id = definition_id_for(expense_approval.workflow_type)
        read_queries = MirrorQueries(session_factory(setup.engine))
        rng = random.Random(13)
        for level in sorted(args.rows):
            if level <= 10_000:
                _, seconds = await seed(setup.writer.engine, level, definition_id, rng)
            else:
                await seed(setup.writer.engine, 10_000, definition_id, rng)
                seconds = await grow(setup.writer.engine, level)
            env = types.SimpleNamespace(
                args=types.SimpleNamespace(query_rows=level, query_runs=args.query_runs)
            )
            result = await query_bench(
                cast(Any, env), "postgresql", setup.writer.engine, setup.engine, read_queries, definition_id
            )
            results.append((level, seconds, result, loadavg()))
            print(
                f"  {result.rows:>9,} rows (filled in {seconds:.1f} s): inbox {p50_p95(result.inbox)}, "
                f"pending_tasks {p50_p95(result.pending)}; load {loadavg()}",
                flush=True,
            )
            if level == max(args.rows):
                for line in result.explain:
                    print(line)
    print(
        "\ntask rows   inbox p50 / p95        pending_tasks p50 / p95   "
        f"(target p95 < {TARGET_QUERY_P95 * 1000:.0f} ms)"
    )
    for _level, _seconds, result, load in results:
        ok = [quantile(v, 0.95) < TARGET_QUERY_P95 for v in (result.inbox, result.pending)]
        print(
            f"  {result.rows:>9,}  {p50_p95(result.inbox)} {verdict(ok[0])}  "
            f"{p50_p95(result.pending)} {verdict(ok[1])}  (load {load})"
        )
    return 0
