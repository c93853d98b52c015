"""The inbox endpoint's latency with 100,000 task rows on PostgreSQL, next to the same query
through the client.

    .venv/bin/python bench/inbox_latency.py             # 100,000 rows, 300 timed calls each
    .venv/bin/python bench/inbox_latency.py --rows 10000 --runs 100   # a smoke run

A fresh database next to ``--postgres-url`` (default ``$DWF_BENCH_POSTGRES_URL``, else
``postgresql+asyncpg://postgres@127.0.0.1:5432/postgres``) is migrated and filled with the
synthetic rows of ``bench/query_latency.py`` (Core INSERTs in chunks, then ANALYZE), and dropped
at the end. Then, for random users (each with three groups) in random tenants, after 20 untimed
calls of each:

- ``client``: ``WorkflowClient.queries.inbox(user, groups, tenant_id=...)``, the query as an
  application calls it;
- ``asgi``: ``GET /api/inbox`` with a bearer JWT through httpx's ASGI transport, in process:
  the token verified, the same query, the page serialized with its ETag;
- ``asgi 304``: the same request with ``If-None-Match`` of the previous answer (a poller's
  request when nothing changed);
- ``http``: ``GET /api/inbox`` over TCP to uvicorn, in the same process and event loop
  (the client's and the server's work both count).

Besides wall-clock p50 and p95, each line reports the CPU this process spent per call (the
driver, SQLAlchemy, the API; not PostgreSQL's work): on a loaded machine wall time mostly
measures waiting for a CPU, while the CPU per call, compared between ``client`` and ``asgi``,
is what the API adds to the query.

The endpoint only reads the mirror, so no Temporal server is involved. Target: p95 < 20 ms for
``asgi`` and ``http``. The machine's load average is printed before and after: on a shared
machine, figures move with it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.environment import create_database, drop_database
from bench.figures import p50_p95, quantile, verdict
from bench.query_latency import N_TENANTS, N_USERS, TENANT_WEIGHTS, seed, user_groups

SECRET = "bench-inbox-shared-secret-0123456789abcdef"
TARGET_P95 = 0.020


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min) {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


CPU: dict[str, float] = {}
"""This process's CPU seconds per call, by line (PostgreSQL's own work is not in it)."""


async def _time(
    runs: int, make: Callable[[], Callable[[], Awaitable[Any]]], label: str = ""
) -> tuple[list[float], list[int]]:
    for _ in range(20):  # warm the pool, the statement caches and the database's buffers
        await make()()
    times, rows = [], []
    cpu = time.process_time()
    for _ in range(runs):
        call = make()
        started = time.perf_counter()
        rows.append(await call())
        times.append(time.perf_counter() - started)
    CPU[label] = (time.process_time() - cpu) / runs
    return times, rows


async def main(args: argparse.Namespace) -> int:
    import httpx
    import jwt
    import uvicorn

    from examples.expense_approval import expense_approval
    from sdk import WorkflowClient
    from sdk.inbox import JWTAuthenticator, create_inbox_app
    from sdk.mirror import MirrorWriter

    print(f"before: {_load()}", flush=True)
    name = f"dwf_bench_inbox_{uuid.uuid4().hex[:8]}"
    url = await create_database(args.postgres_url, name)
    try:
        writer = MirrorWriter.from_url(url)
        await writer.upgrade_schema()
        definition_ids = await writer.register_definitions([expense_approval])
        rng = random.Random(16)
        print(f"seeding workflow_human_tasks to {args.rows:,} rows ...", flush=True)
        count, seconds = await seed(
            writer.engine, args.rows, definition_ids[expense_approval.workflow_type], rng
        )
        print(f"  {count:,} task rows in {seconds:.1f} s", flush=True)
        await writer.close()

        # Reads only: the client needs its mirror, not a Temporal connection.
        client = WorkflowClient(None, database_url=url)  # type: ignore[arg-type]
        app = create_inbox_app(client, authenticator=JWTAuthenticator(secret=SECRET))
        tokens: dict[tuple[int, str], str] = {}

        def pick() -> tuple[int, str]:
            user = rng.randrange(N_USERS)
            return user, f"tenant-{rng.choices(range(N_TENANTS), TENANT_WEIGHTS)[0]}"

        def headers(user: int, tenant: str) -> dict[str, str]:
            key = (user, tenant)
            if key not in tokens:
                claims = {"sub": f"user-{user:04d}", "groups": user_groups(user), "tenant_id": tenant}
                tokens[key] = jwt.encode({**claims, "exp": int(time.time()) + 3600}, SECRET)
            return {"Authorization": f"Bearer {tokens[key]}"}

        def through_client() -> Callable[[], Awaitable[Any]]:
            user, tenant = pick()

            async def call() -> int:
                page = await client.queries.inbox(f"user-{user:04d}", user_groups(user), tenant_id=tenant)
                return len(page.items)

            return call

        def through(http: httpx.AsyncClient, conditional: bool = False) -> Callable[[], Awaitable[Any]]:
            user, tenant = pick()
            sent = headers(user, tenant)

            async def call() -> int:
                response = await http.get("/api/inbox", headers=sent)
                assert response.status_code == 200, response.text
                if conditional:
                    again = await http.get(
                        "/api/inbox", headers={**sent, "If-None-Match": response.headers["ETag"]}
                    )
                    assert again.status_code == 304, again.status_code
                return len(response.json()["items"])

            return call

        results: dict[str, list[float]] = {}
        rows: dict[str, list[int]] = {}
        async with app.router.lifespan_context(app):
            results["client"], rows["client"] = await _time(args.runs, through_client, "client")
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://inbox") as http:
                results["asgi"], rows["asgi"] = await _time(args.runs, lambda: through(http), "asgi")
                pairs, _ = await _time(args.runs, lambda: through(http, conditional=True), "asgi 200 + 304")
                results["asgi 200 + 304"] = pairs
            port = _free_port()
            server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning", lifespan="off"))
            serving = asyncio.create_task(server.serve())
            while not server.started:
                await asyncio.sleep(0.01)
            try:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                    results["http"], rows["http"] = await _time(args.runs, lambda: through(http), "http")
            finally:
                server.should_exit = True
                await serving
        await client.close()
    finally:
        await drop_database(args.postgres_url, name)

    print(f"\ninbox of a random user (3 groups) in a random tenant, {count:,} task rows, PostgreSQL")
    print("  wall p50 / p95 (n)                   rows per page (mean)   CPU of this process per call")
    for label, times in results.items():
        page = rows.get(label)
        mean_rows = f"{sum(page) / len(page):5.1f}" if page else "    -"
        print(f"  {label:<15} {p50_p95(times)}   {mean_rows}                  {CPU[label] * 1000:5.1f} ms")
    print(f"after: {_load()}")
    worst = max(quantile(results["asgi"], 0.95), quantile(results["http"], 0.95))
    print(f"\ntarget: endpoint p95 < {TARGET_P95 * 1000:.0f} ms: {verdict(worst < TARGET_P95)}")
    return 0


def _args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="task rows (default 100,000)")
    parser.add_argument("--runs", type=int, default=300, help="timed calls of each kind (default 300)")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "DWF_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
        ),
        help="the PostgreSQL server's maintenance database",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(_args())))
