"""The report: one block per configuration, the targets, and the rounds side by side."""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Sequence

from bench.figures import (
    DBOS_RATIO,
    TARGET_CPU_RATIO,
    TARGET_LAG_P95,
    TARGET_QUERY_P95,
    TARGET_RATIO,
    ConfigResult,
    LagSample,
    ThroughputResult,
    loadavg,
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
    nolist = results.get("plain-nolist")
    base = plain.throughput.throughput if plain else math.nan
    base_nolist = nolist.throughput.throughput if nolist else math.nan
    rule = "=" * 112
    print(f"\n{rule}\nSUMMARY: {args.instances} concurrent instances per configuration; SDK drivers find")
    how = "the mirror (one shared inbox query)" if args.sdk_wait == "mirror" else "the state query"
    print(f"their task via {how} and complete it with signal_complete_task; plain drivers list")
    print(
        "through Temporal's visibility API (plain) or never ask (plain-nolist). "
        f"Load average now {loadavg()}."
    )
    print(rule)
    print(
        f"1. Throughput, first start to last result (target: SDK/plain >= {TARGET_RATIO:.1f}; "
        f"DBOS measured {DBOS_RATIO:.1f}), and CPU per instance"
    )
    print(
        f"  {'configuration':<16} {'done':>5} {'wall s':>7} {'inst/s':>7} {'/plain':>6} {'':6}{'/nolist':>7}"
        f"{'CPU ms/inst: process + server + postgres = total':>52}  {'CPU ratio':>9}  load"
    )
    base_cpu = sum(plain.throughput.cpu_ms) if plain else math.nan
    for name, res in results.items():
        t = res.throughput
        problems += t.errors
        proc, server, pg = t.cpu_ms
        cpu = f"{proc:6.1f} + {server:6.1f} + {pg:5.1f} = {proc + server + pg:6.1f}"
        done = len(t.latencies)
        if name.startswith("plain"):
            print(
                f"  {name:<16} {done:>5} {t.wall:7.1f} {t.throughput:7.2f} {'':20}{cpu:>52}  {'':9}  {t.load}"
            )
            continue
        ratio = t.throughput / base
        ok = None if math.isnan(ratio) else ratio >= TARGET_RATIO
        print(
            f"  {name:<16} {done:>5} {t.wall:7.1f} {t.throughput:7.2f} {ratio:6.2f} {verdict(ok):6}"
            f"{t.throughput / base_nolist:7.2f}{cpu:>52}  {base_cpu / (proc + server + pg):9.2f}  {t.load}"
        )
    print(
        "  (CPU ratio = plain's CPU per instance / this one's: the throughput ratio to expect when the\n"
        "   machine is CPU-bound and all of it is the benchmark's; compare it with the measured ratio)"
    )
    if plain is not None:
        plain_proc = plain.throughput.cpu_ms[0]
        plain_done = plain.throughput.approval_done
        print(
            f"\n2. Python CPU per instance (target: at most plain's + {100 * (TARGET_CPU_RATIO - 1):.0f} %) "
            "and approval -> done p50 / p95 (target: at most plain's)"
        )
        for name, res in results.items():
            t = res.throughput
            cpu_ok = None if name.startswith("plain") else t.cpu_ms[0] <= plain_proc * TARGET_CPU_RATIO
            p50, p95 = quantile(t.approval_done, 0.5), quantile(t.approval_done, 0.95)
            lat_ok = None
            if not name.startswith("plain") and plain_done:
                lat_ok = p50 <= quantile(plain_done, 0.5) and p95 <= quantile(plain_done, 0.95)
            print(
                f"  {name:<16} process CPU {t.cpu_ms[0]:6.1f} ms/instance "
                f"({t.cpu_ms[0] / plain_proc:4.2f}x plain) "
                f"{verdict(cpu_ok)}   approval -> done {p50_p95(t.approval_done)}  {verdict(lat_ok)}"
            )
    mirrored = [(name, res.mirror) for name, res in results.items() if res.mirror is not None]
    if mirrored:
        print(
            f"\n3. Mirror lag, p50 / p95 (target at a steady {args.lag_rate:g}/s: "
            f"p95 < {TARGET_LAG_P95 * 1000:.0f} ms)"
        )
        for name, m in mirrored:
            for label, phase, judged in (
                (f"{args.instances} at once", m.load, False),
                (f"{m.light_instances} at {args.lag_rate:g}/s", m.light, True),
            ):
                print(
                    f"  {name:<16} {label:<14} writer.metrics.lag_seconds {p50_p95(phase.metric)}  "
                    f"{target(phase.metric, TARGET_LAG_P95) if judged else ''}"
                )
                print(
                    f"  {'':<16} {'':<14} signal sent -> row completed {p50_p95(phase.e2e)}  "
                    f"{target(phase.e2e, TARGET_LAG_P95) if judged else ''}"
                )
                if not judged:
                    print(
                        f"  {'':<16} {'':<14} of which the mirror's own queueing (write wait) "
                        f"{p50_p95(phase.queueing)}; Temporal's workflow-task queueing "
                        f"{p50_p95(phase.temporal_queueing)}"
                    )
    queried = [(name, res.queries) for name, res in results.items() if res.queries is not None]
    if queried:
        print(
            "\nPending-task query latency, one MirrorQueries call, p50 / p95 "
            f"(target on PostgreSQL: p95 < {TARGET_QUERY_P95 * 1000:.0f} ms; "
            "bench/scale.py for 1,000,000 rows)"
        )
        for name, q in queried:
            for label, times in (("inbox", q.inbox), ("pending_tasks", q.pending)):
                print(
                    f"  {name:<16} {label:<14} {q.rows:>8,} task rows  {p50_p95(times)}  "
                    f"{target(times, TARGET_QUERY_P95)}"
                )
    return problems


def report_rounds(rounds: dict[str, list[ThroughputResult]]) -> None:
    """Throughput and Python CPU of every round, and the ratios of the medians (the machine's
    speed drifts between minutes, so one round's ratio is noisy)."""
    plain = rounds.get("plain", [])
    nolist = rounds.get("plain-nolist", [])
    base = statistics.median(t.throughput for t in plain) if plain else math.nan
    base_nolist = statistics.median(t.throughput for t in nolist) if nolist else math.nan
    base_cpu = statistics.median(t.cpu_ms[0] for t in plain) if plain else math.nan
    print("\nBy round (configurations interleaved, order rotated): inst/s, then process CPU ms/instance")
    for name, runs in rounds.items():
        each = " ".join(f"{t.throughput:6.2f}" for t in runs)
        med = statistics.median(t.throughput for t in runs)
        cpu = statistics.median(t.cpu_ms[0] for t in runs)
        cpus = " ".join(f"{t.cpu_ms[0]:5.1f}" for t in runs)
        line = f"  {name:<16} {each}   median {med:6.2f}; CPU {cpus}"
        line += f" median {cpu:5.1f}"
        if not name.startswith("plain") and plain:
            ratio = med / base
            per_round = " ".join(
                f"{t.throughput / p.throughput:.2f}" for t, p in zip(runs, plain, strict=False)
            )
            line += (
                f"\n  {'':<16} ratio/plain {ratio:.2f} {verdict(ratio >= TARGET_RATIO)} "
                f"(per round: {per_round}); "
                f"ratio/plain-nolist {med / base_nolist:.2f}; CPU/plain {cpu / base_cpu:.2f} "
                f"{verdict(cpu <= base_cpu * TARGET_CPU_RATIO)}"
            )
        print(line)
    loads = sorted({t.load for runs in rounds.values() for t in runs})
    print(f"  load averages seen at the end of runs: {', '.join(loads)}")


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
    print(f"    approval sent -> result {p50_p95(t.approval_done)}")
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
