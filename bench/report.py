"""The report: one block per configuration, the targets, and the rounds side by side."""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Sequence

from bench.figures import (
    TARGET_LAG_P95,
    TARGET_QUERY_P95,
    TARGET_RATIO,
    ConfigResult,
    LagSample,
    ThroughputResult,
    mean,
    p50_p95,
    quantile,
    verdict,
)


def target(values: Sequence[float], limit: float) -> str:
    p95 = quantile(values, 0.95)
    return verdict(None if math.isnan(p95) else p95 < limit)


def report(args: argparse.Namespace, results: dict[str, ConfigResult]) -> list[str]:
    """Print the summary; return the problems (errors) found."""
    problems: list[str] = []
    plain = results.get("plain")
    base = plain.throughput.throughput if plain else math.nan
    rule = "=" * 104
    print(f"\n{rule}\nSUMMARY: {args.instances} concurrent instances per configuration; SDK drivers find")
    how = "the mirror (one shared inbox query)" if args.sdk_wait == "mirror" else "the state query"
    print(f"their task via {how} and complete it with signal_complete_task.\n{rule}")
    print("Throughput, first start to last result (target: SDK/plain >= 0.80), and CPU per instance")
    print(
        f"  {'configuration':<16} {'done':>5} {'wall s':>7} {'inst/s':>7} {'ratio':>6} {'':6}"
        f"{'CPU ms/inst: process + server + postgres = total':>50}  {'CPU ratio':>9}"
    )
    base_cpu = sum(plain.throughput.cpu_ms) if plain else math.nan
    for name, res in results.items():
        t = res.throughput
        problems += t.errors
        proc, server, pg = t.cpu_ms
        cpu = f"{proc:6.1f} + {server:6.1f} + {pg:5.1f} = {proc + server + pg:6.1f}"
        if name == "plain":
            print(f"  {name:<16} {len(t.latencies):>5} {t.wall:7.1f} {t.throughput:7.2f} {'':13}{cpu:>50}")
            continue
        ratio = t.throughput / base
        ok = None if math.isnan(ratio) else ratio >= TARGET_RATIO
        done = len(t.latencies)
        print(
            f"  {name:<16} {done:>5} {t.wall:7.1f} {t.throughput:7.2f} {ratio:6.2f} {verdict(ok):6}{cpu:>50}"
            f"  {base_cpu / (proc + server + pg):9.2f}"
        )
    print(
        "  (CPU ratio = plain's CPU per instance / this one's: the throughput ratio to expect when the\n"
        "   machine is CPU-bound and all of it is the benchmark's; compare it with the measured ratio)"
    )
    mirrored = [(name, res.mirror) for name, res in results.items() if res.mirror is not None]
    if mirrored:
        print("\nMirror lag, p50 / p95 (target: p95 < 100 ms)")
        for name, m in mirrored:
            for label, phase in (
                (f"{args.instances} at once", m.load),
                (f"{m.light_instances} at {args.lag_rate:g}/s", m.light),
            ):
                print(
                    f"  {name:<16} {label:<14} writer.metrics.lag_seconds {p50_p95(phase.metric)}  "
                    f"{target(phase.metric, TARGET_LAG_P95)}"
                )
                print(
                    f"  {'':<16} {'':<14} signal sent -> row completed {p50_p95(phase.e2e)}  "
                    f"{target(phase.e2e, TARGET_LAG_P95)}"
                )
    queried = [(name, res.queries) for name, res in results.items() if res.queries is not None]
    if queried:
        print(
            "\nPending-task query latency, one MirrorQueries call, p50 / p95 "
            "(target on PostgreSQL: p95 < 10 ms)"
        )
        for name, q in queried:
            for label, times in (("inbox", q.inbox), ("pending_tasks", q.pending)):
                print(
                    f"  {name:<16} {label:<14} {q.rows:>8,} task rows  {p50_p95(times)}  "
                    f"{target(times, TARGET_QUERY_P95)}"
                )
    return problems


def report_rounds(rounds: dict[str, list[ThroughputResult]]) -> None:
    """Throughput of every round, and the ratio of the medians (the machine's speed drifts)."""
    plain = rounds.get("plain", [])
    base = statistics.median(t.throughput for t in plain) if plain else math.nan
    print("\nThroughput by round (configurations interleaved), inst/s; ratio of the medians")
    for name, runs in rounds.items():
        each = " ".join(f"{t.throughput:6.2f}" for t in runs)
        med = statistics.median(t.throughput for t in runs)
        line = f"  {name:<16} {each}   median {med:6.2f}"
        if name != "plain" and plain:
            ratio = med / base
            per_round = " ".join(
                f"{t.throughput / p.throughput:.2f}" for t, p in zip(runs, plain, strict=False)
            )
            line += f"   ratio {ratio:.2f} {verdict(ratio >= TARGET_RATIO)}  (per round: {per_round})"
        print(line)


def print_lag(label: str, sample: LagSample) -> None:
    print(f"    mirror lag, {label}:")
    print(f"      writer.metrics.lag_seconds (all samples)  {p50_p95(sample.metric)}")
    for kind in (
        "WorkflowStarted",
        "StepStarted",
        "StepCompleted",
        "HumanTaskCreated",
        "HumanTaskCompleted",
        "WorkflowCompleted",
    ):
        print(f"      batch lag {kind:<31} {p50_p95(sample.by_kind.get(kind, []))}")
    print(f"      signal sent -> task row completed         {p50_p95(sample.e2e)}")
    print(f"      write time of an event batch                {p50_p95(sample.batch_write)}")
    print(f"      write time of a step attempt (start or end) {p50_p95(sample.attempt_write)}")


def print_config(name: str, res: ConfigResult) -> None:
    t = res.throughput
    print(
        f"\n-- {name}: {len(t.latencies)}/{t.instances} instances in {t.wall:.1f} s = "
        f"{t.throughput:.2f} instances/s",
        flush=True,
    )
    print(f"    instance latency start->result {p50_p95(t.latencies)}")
    print(f"    start -> driver found the approval wait {p50_p95(t.waits)}{t.note}")
    print(f"    {t.cpu}")
    print(f"    {t.profile}")
    print(f"    warnings logged (timed-out attempts and the like): {t.logs}")
    for error in t.errors[:5]:
        print(f"    ERROR {error}")
    if res.mirror is not None:
        m = res.mirror
        print_lag(f"{t.instances} at once", m.load)
        if m.poller:
            print(f"    {m.poller}")
        print_lag(f"{m.light_instances} instances started at a steady rate", m.light)
    if res.queries is not None:
        q = res.queries
        print(f"    seeded to {q.rows:,} task rows in {q.seed_seconds:.1f} s")
        for label, times, rows, sql, statements in (
            ("inbox(user, 3 groups, tenant)", q.inbox, q.inbox_rows, q.inbox_sql, q.inbox_statements),
            ("pending_tasks(group, tenant)", q.pending, q.pending_rows, q.pending_sql, q.pending_statements),
        ):
            print(
                f"    {label:<30} {p50_p95(times)}; {mean(rows):.1f} rows/page, "
                f"{mean(statements):.2f} statements/call, in the driver {p50_p95(sql)}"
            )
        for line in q.explain:
            print(line)
