"""The inbox's HTTP API on the real Temporal dev server, with the mirror on SQLite and PostgreSQL.

Calls go through httpx to the ASGI application in process. Identity comes from bearer JWTs
(or a cookie session); each test works in a tenant of its own, so inboxes and lists see only
its tasks. Covered: identity and tenancy (another tenant's objects are 404), every task action
and instance control, problem details with each failing field, pagination with totals, the
ETag that tells a poller something changed, CSRF on cookie sessions, and refusals that change
no row. The module ends with a clean audit of every instance it touched.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.routing import Mount

from sdk import Identity, InstanceHandle, TaskStatus, WorkflowStatus
from sdk.inbox import CSRF_HEADER, PROBLEM_JSON
from sdk.mirror import MirrorWriter, audit
from tests.integration.inbox_support import JWT_SECRET, Inbox, bearer, mirror_snapshot, open_inbox, token
from tests.integration.support import Eventually, commands_received
from tests.workflows import lifecycle
from tests.workflows.lifecycle import CLERKS, Ticket

DEFINITIONS = [lifecycle.lifecycle_task, lifecycle.lifecycle_gated]


@pytest.fixture(name="inbox", scope="module")
async def fixture_inbox(server: Any, database_url: str, worker: Any) -> Any:
    dev_users = {"dora": Identity(user="dora", groups=(CLERKS,), tenant_id="dev-tenant")}
    async with open_inbox(server.target, database_url, worker.task_queue, dev_users) as inbox:
        yield inbox


def _tenant() -> str:
    return f"tenant-{uuid.uuid4().hex[:8]}"


def _problem(response: httpx.Response, status: int, kind: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["type"].startswith("urn:")
    if kind is not None:
        assert body["kind"] == kind, body
    return body


async def _start(
    inbox: Inbox, tenant: str, route: lifecycle.Route = "group", **fields: Any
) -> InstanceHandle[Any]:
    ticket = Ticket(subject=f"{route}-{uuid.uuid4().hex[:6]}", route=route, **fields)
    handle = await inbox.client.start(lifecycle.lifecycle_task, ticket, tenant_id=tenant)
    inbox.touched.append(handle.id)
    return handle


async def _pending(inbox: Inbox, handle: InstanceHandle[Any]) -> str:
    """The id of the instance's pending task, once the mirror has its row."""
    task = await handle.next_task(timeout=30)
    return task.task_id


async def test_identity_comes_from_a_verified_token_never_from_the_body(
    inbox: Inbox, assert_eventually: Eventually
) -> None:
    tenant = _tenant()
    http = inbox.http
    _problem(await http.get("/api/inbox"), 401, "AuthenticationError")
    forged = {"Authorization": f"Bearer {token('ann', tenant=tenant, secret='another-secret-' + 'x' * 32)}"}
    _problem(await http.get("/api/inbox", headers=forged), 401, "AuthenticationError")
    expired = {"Authorization": f"Bearer {token('ann', tenant=tenant, expires_in=-3600)}"}
    _problem(await http.get("/api/inbox", headers=expired), 401, "AuthenticationError")
    _problem(await http.get("/api/inbox", headers={"Authorization": "Basic YW5uOng="}), 401)
    # Without a tenant the identity would read every tenant's rows: refused by this inbox.
    _problem(await http.get("/api/inbox", headers=bearer("ann")), 403, "PermissionDeniedError")

    me = await http.get("/api/session", headers=bearer("ann", groups=(CLERKS,), tenant=tenant))
    assert me.json() | {"csrf_token": None} == {
        "user": "ann",
        "groups": [CLERKS],
        "admin": False,
        "tenant_id": tenant,
        "csrf_token": None,
        "dev_users": ["dora"],
    }
    # The body cannot name who starts the instance, nor its tenant.
    start = {"workflow": "tests.lifecycle.task", "input": {"subject": "s", "route": "user"}}
    _problem(
        await http.post(
            "/api/instances", json={**start, "user": "root"}, headers=bearer("ann", tenant=tenant)
        ),
        422,
    )
    _problem(
        await http.post(
            "/api/instances", json={**start, "tenant_id": "other"}, headers=bearer("ann", tenant=tenant)
        ),
        403,
    )
    started = await http.post("/api/instances", json=start, headers=bearer("ann", tenant=tenant))
    assert started.status_code == 201, started.text
    inbox.touched.append(started.json()["workflow_id"])
    instance = started.json()["instance_id"]

    async def mirrored() -> httpx.Response:
        shown = await http.get(f"/api/instances/{instance}", headers=bearer("ann", tenant=tenant))
        assert shown.status_code == 200, shown.text
        return shown

    shown = await assert_eventually(mirrored, timeout=30)
    assert (shown.json()["instance"]["created_by"], shown.json()["instance"]["tenant_id"]) == ("ann", tenant)


async def test_inbox_pages_count_totals_and_the_etag_changes_when_a_task_is_taken(
    inbox: Inbox, assert_eventually: Eventually
) -> None:
    tenant = _tenant()
    handles = [await _start(inbox, tenant) for _ in range(3)]
    task_ids = [await _pending(inbox, h) for h in handles]
    bob = bearer("bob", groups=(CLERKS,), tenant=tenant)
    first = await inbox.http.get("/api/inbox", params={"limit": 2}, headers=bob)
    assert first.status_code == 200
    assert (first.json()["total"], len(first.json()["items"]), first.json()["limit"]) == (3, 2, 2)
    assert first.json()["total_exact"] is True  # below the count's cap (docs/inbox.md)
    rest = await inbox.http.get("/api/inbox", params={"limit": 2, "offset": 2}, headers=bob)
    seen = [t["id"] for t in first.json()["items"] + rest.json()["items"]]
    assert sorted(seen) == sorted(task_ids) and rest.json()["total"] == 3

    params = {"include_claimed_by_others": "false"}
    polled = await inbox.http.get("/api/inbox", params=params, headers=bob)
    etag = polled.headers["ETag"]
    again = await inbox.http.get("/api/inbox", params=params, headers={**bob, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""

    cara = bearer("cara", groups=(CLERKS,), tenant=tenant)
    assert (await inbox.http.post(f"/api/tasks/{task_ids[0]}/claim", headers=cara)).status_code == 200
    changed = await inbox.http.get("/api/inbox", params=params, headers={**bob, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert task_ids[0] not in [t["id"] for t in changed.json()["items"]]
    assert changed.json()["total"] == 2

    # Lists of pending tasks: one's own group's; someone else's group is refused.
    listed = await inbox.http.get("/api/tasks", params={"group": CLERKS, "limit": 1}, headers=bob)
    assert (listed.json()["total"], len(listed.json()["items"])) == (3, 1)
    _problem(await inbox.http.get("/api/tasks", params={"group": "chiefs"}, headers=bob), 403)
    _problem(await inbox.http.get("/api/inbox", params={"limit": 0}, headers=bob), 422)


async def test_every_task_action_with_its_trail_and_refusals_that_change_nothing(
    inbox: Inbox, db: AsyncEngine
) -> None:
    tenant = _tenant()
    handle = await _start(inbox, tenant)
    task = await _pending(inbox, handle)
    http = inbox.http
    bob = bearer("bob", groups=(CLERKS,), tenant=tenant)
    cara = bearer("cara", groups=(CLERKS,), tenant=tenant)
    eve = bearer("eve", groups=("staff",), tenant=tenant)

    claimed = await http.post(f"/api/tasks/{task}/claim", headers=bob)
    assert claimed.status_code == 200 and claimed.json()["claimed_by"] == "bob"

    # Refusals: each a problem, none sent to the workflow, no row changed.
    before, commands = await mirror_snapshot(db), await commands_received(handle)
    _problem(await http.post(f"/api/tasks/{task}/claim", headers=cara), 409, "TaskClaimConflictError")
    _problem(await http.get(f"/api/tasks/{task}", headers=eve), 404, "TaskNotFoundError")
    _problem(await http.post(f"/api/tasks/{task}/comments", json={"body": "hi"}, headers=eve), 404)
    invalid = await http.post(
        f"/api/tasks/{task}/complete", json={"data": {"score": 9, "note": "x" * 50}}, headers=bob
    )
    problem = _problem(invalid, 422, "FormValidationError")
    assert {e["field"] for e in problem["errors"]} == {"approved", "score", "note"}
    assert all(e["message"] and e["type"] for e in problem["errors"])
    _problem(
        await http.post(f"/api/tasks/{task}/reassign", json={"to_user": "cara", "reason": " "}, headers=bob),
        422,
    )
    _problem(await http.post(f"/api/tasks/{task}/comments", json={"body": ""}, headers=bob), 422)
    _problem(await http.post(f"/api/tasks/{uuid.uuid4()}/claim", headers=bob), 404, "TaskNotFoundError")
    _problem(await http.post("/api/tasks/not-a-task/release", headers=bob), 404)
    assert await mirror_snapshot(db) == before and await commands_received(handle) == commands

    assert (await http.post(f"/api/tasks/{task}/release", headers=bob)).json()["claimed_by"] is None
    assert (await http.post(f"/api/tasks/{task}/claim", headers=bob)).status_code == 200
    commented = await http.post(f"/api/tasks/{task}/comments", json={"body": "looking"}, headers=bob)
    assert [c["body"] for c in commented.json()["comments"]] == ["looking"]
    moved = await http.post(
        f"/api/tasks/{task}/reassign", json={"to_user": "cara", "reason": "on leave"}, headers=bob
    )
    assert moved.status_code == 200 and moved.json()["assignee_id"] == "cara"

    detail = await http.get(f"/api/tasks/{task}", headers=cara)
    assert detail.status_code == 200, detail.text
    same = await http.get(f"/api/tasks/{task}", headers={**cara, "If-None-Match": detail.headers["ETag"]})
    assert same.status_code == 304
    body = detail.json()
    assert set(body["form_schema"]["properties"]) == {"approved", "score", "note"}
    assert [c["author"] for c in body["comments"]] == ["bob"]
    trail = [(a["action"], a["by_user"]) for a in body["assignments"]]
    assert trail == [("claim", "bob"), ("release", "bob"), ("claim", "bob"), ("reassign", "bob")]

    done = await http.post(
        f"/api/tasks/{task}/complete",
        json={"data": {"approved": True, "score": 4}, "comment": "ok"},
        headers=cara,
    )
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["completed_by"]) == (TaskStatus.COMPLETED.value, "cara")
    _problem(
        await http.post(f"/api/tasks/{task}/complete", json={"data": {"approved": True}}, headers=cara), 409
    )
    assert (await handle.result()).score == 4


async def test_with_an_identity_provider_the_provider_says_the_groups(
    server: Any, database_url: str, worker: Any, inbox: Inbox
) -> None:
    tenant = _tenant()
    directory = {
        "bob": Identity(user="bob", groups=(CLERKS,), tenant_id=tenant),
        "eve": Identity(user="eve", groups=("staff",), tenant_id=tenant),
    }
    handle = await _start(inbox, tenant)
    task = await _pending(inbox, handle)
    async with open_inbox(
        server.target, database_url, worker.task_queue, identity_provider=directory.__getitem__
    ) as app:
        # eve's token claims the clerks group; the application's directory says otherwise.
        claimed_by_eve = await app.http.post(
            f"/api/tasks/{task}/claim", headers=bearer("eve", groups=(CLERKS,), tenant=tenant)
        )
        assert "'eve' may not act" in _problem(claimed_by_eve, 403, "PermissionDeniedError")["detail"]
        claimed = await app.http.post(
            f"/api/tasks/{task}/claim", headers=bearer("bob", groups=(CLERKS,), tenant=tenant)
        )
        assert claimed.status_code == 200 and claimed.json()["claimed_by"] == "bob", claimed.text
        done = await app.http.post(
            f"/api/tasks/{task}/complete",
            json={"data": {"approved": True}},
            headers=bearer("bob", groups=(CLERKS,), tenant=tenant),
        )
        assert done.status_code == 200, done.text


async def test_another_tenants_tasks_and_instances_are_not_found(inbox: Inbox) -> None:
    tenant, other = _tenant(), _tenant()
    handle = await _start(inbox, tenant, route="user")  # assigned to ann
    task = await _pending(inbox, handle)
    instance = str(handle.instance_id)
    stranger = bearer("ann", groups=(CLERKS,), tenant=other)  # same name, another tenant
    for response in (
        await inbox.http.get(f"/api/tasks/{task}", headers=stranger),
        await inbox.http.post(f"/api/tasks/{task}/claim", headers=stranger),
        await inbox.http.post(
            f"/api/tasks/{task}/complete", json={"data": {"approved": True}}, headers=stranger
        ),
        await inbox.http.get(f"/api/instances/{instance}", headers=stranger),
        await inbox.http.post(f"/api/instances/{instance}/cancel", headers=stranger),
    ):
        _problem(response, 404)
    assert (await inbox.http.get("/api/inbox", headers=stranger)).json()["total"] == 0
    assert (await inbox.http.get("/api/instances", headers=stranger)).json()["total"] == 0

    root = bearer("root", tenant="*", admin=True)  # an administrator of all tenants sees it
    assert (await inbox.http.get(f"/api/instances/{instance}", headers=root)).status_code == 200
    own = bearer("ann", tenant=tenant)
    assert [t["id"] for t in (await inbox.http.get("/api/inbox", headers=own)).json()["items"]] == [task]
    done = await inbox.http.post(
        f"/api/tasks/{task}/complete", json={"data": {"approved": False}}, headers=own
    )
    assert done.status_code == 200, done.text


async def test_instances_start_list_show_pause_resume_and_cancel(
    inbox: Inbox, assert_eventually: Eventually
) -> None:
    tenant = _tenant()
    http = inbox.http
    ann = bearer("ann", groups=(CLERKS,), tenant=tenant)
    start = {"workflow": "tests.lifecycle.gated", "input": {"subject": "gate"}}
    bad = await http.post("/api/instances", json={**start, "input": {"route": "nowhere"}}, headers=ann)
    assert {e["field"] for e in _problem(bad, 422, "FormValidationError")["errors"]} >= {"subject"}
    _problem(await http.post("/api/instances", json={"workflow": "no.such.workflow"}, headers=ann), 404)
    started = await http.post("/api/instances", json=start, headers=ann)
    assert started.status_code == 201, started.text
    instance, workflow_id = started.json()["instance_id"], started.json()["workflow_id"]
    inbox.touched.append(workflow_id)

    async def status(*expected: WorkflowStatus) -> dict[str, Any]:
        shown = await http.get(f"/api/instances/{instance}", headers=ann)
        assert shown.status_code == 200, shown.text
        assert shown.json()["instance"]["status"] in {s.value for s in expected}, shown.json()["instance"]
        return dict(shown.json())

    detail = await assert_eventually(
        lambda: status(WorkflowStatus.RUNNING, WorkflowStatus.WAITING), timeout=30
    )
    assert [s["step_name"] for s in detail["steps"]] == ["lc_gate"]
    assert [t["step_name"] for t in detail["tasks"]] == ["lc_gate"]
    diagram = (await http.get(f"/api/instances/{instance}/diagram", headers=ann)).json()["mermaid"]
    assert diagram.startswith("flowchart TD") and "lc_gate" in diagram and "lc_after_gate" in diagram
    assert "class n_lc_gate waiting" in diagram, diagram  # the step's state, from the mirror
    _problem(
        await http.get(f"/api/instances/{instance}/diagram", headers=bearer("ann", tenant=_tenant())), 404
    )
    drawn = await http.get("/api/definitions/tests.lifecycle.gated/diagram", headers=ann)
    assert "lc_gate" in drawn.json()["mermaid"] and "class " not in drawn.json()["mermaid"]
    _problem(await http.get("/api/definitions/no.such/diagram", headers=ann), 404, "WorkflowNotFoundError")
    listed = await http.get("/api/instances", params={"workflow_name": "tests.lifecycle.gated"}, headers=ann)
    assert [i["id"] for i in listed.json()["items"]] == [instance] and listed.json()["total"] == 1
    none = await http.get("/api/instances", params={"status": "COMPLETED"}, headers=ann)
    assert none.json()["total"] == 0

    assert (
        await http.post(f"/api/instances/{instance}/pause", json={"reason": "audit"}, headers=ann)
    ).status_code == 202
    await assert_eventually(lambda: status(WorkflowStatus.PAUSED), timeout=30)
    # A page following the instance polls with If-None-Match: 304 until it changes.
    paused = await http.get(f"/api/instances/{instance}", headers=ann)
    unchanged = await http.get(
        f"/api/instances/{instance}", headers={**ann, "If-None-Match": paused.headers["ETag"]}
    )
    assert unchanged.status_code == 304
    assert (await http.post(f"/api/instances/{instance}/resume", headers=ann)).status_code == 202
    await assert_eventually(lambda: status(WorkflowStatus.RUNNING, WorkflowStatus.WAITING), timeout=30)
    resumed = await http.get(
        f"/api/instances/{instance}", headers={**ann, "If-None-Match": paused.headers["ETag"]}
    )
    assert resumed.status_code == 200 and resumed.headers["ETag"] != paused.headers["ETag"]
    assert (
        await http.post(f"/api/instances/{instance}/cancel", json={"reason": "no"}, headers=ann)
    ).status_code == 202
    await assert_eventually(lambda: status(WorkflowStatus.CANCELED), timeout=30)
    _problem(await http.post(f"/api/instances/{instance}/cancel", headers=ann), 409)


async def test_cookie_sessions_need_the_csrf_token_on_unsafe_methods(inbox: Inbox) -> None:
    http = inbox.http
    handle = await _start(inbox, "dev-tenant")
    task = await _pending(inbox, handle)
    assert (await http.get("/api/session/users")).json() == ["dora"]
    _problem(await http.post("/api/session/dev", json={"user": "mallory"}), 401)
    # A cross-site page can post a body without a content type (fetch with no-cors), or as text.
    for headers in ({}, {"Content-Type": "text/plain"}):
        refused = await http.post("/api/session/dev", content=b'{"user": "dora"}', headers=headers)
        assert _problem(refused, 415) and "dwf_session" not in refused.cookies
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=inbox.app), base_url="http://inbox"
    ) as browser:
        signed_in = await browser.post("/api/session/dev", json={"user": "dora"})
        assert signed_in.status_code == 200
        csrf = signed_in.json()["csrf_token"]
        assert csrf and browser.cookies["dwf_csrf"] == csrf
        me = await browser.get("/api/session")
        assert (me.json()["user"], me.json()["csrf_token"]) == ("dora", csrf)
        assert (await browser.get("/api/inbox")).json()["total"] >= 1
        _problem(await browser.post(f"/api/tasks/{task}/claim"), 403)
        _problem(await browser.post(f"/api/tasks/{task}/claim", headers={CSRF_HEADER: "guess"}), 403)
        claimed = await browser.post(f"/api/tasks/{task}/claim", headers={CSRF_HEADER: csrf})
        assert claimed.status_code == 200 and claimed.json()["claimed_by"] == "dora"
        assert (await browser.delete("/api/session", headers={CSRF_HEADER: csrf})).status_code == 204
        _problem(await browser.get("/api/inbox"), 401)

        # Production sign-in: a token the identity provider issued, verified before any session.
        _problem(await browser.post("/api/session/token", json={"token": "not.a.token"}), 401)
        by_token = await browser.post(
            "/api/session/token", json={"token": token("dora", tenant="dev-tenant", groups=(CLERKS,))}
        )
        assert by_token.status_code == 200 and by_token.json()["user"] == "dora"
        done = await browser.post(
            f"/api/tasks/{task}/complete",
            json={"data": {"approved": True}},
            headers={CSRF_HEADER: by_token.json()["csrf_token"]},
        )
        assert done.status_code == 200, done.text


async def test_definitions_and_the_openapi_document(inbox: Inbox) -> None:
    ann = bearer("ann", tenant=_tenant())
    listed = await inbox.http.get("/api/definitions", headers=ann)
    assert {(d["name"], d["version"]) for d in listed.json()} >= {
        ("tests.lifecycle.task", "1.0.0"),
        ("tests.lifecycle.gated", "1.0.0"),
    }
    shown = await inbox.http.get("/api/definitions/tests.lifecycle.gated", headers=ann)
    assert shown.status_code == 200 and shown.json()["definition"], shown.text
    _problem(await inbox.http.get("/api/definitions/nope", headers=ann), 404, "WorkflowNotFoundError")
    document = (await inbox.http.get("/api/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    assert "/api/tasks/{task_id}/complete" in document["paths"]


async def test_the_inbox_mounts_in_fastapi_and_starlette(inbox: Inbox) -> None:
    tenant = _tenant()
    handle = await _start(inbox, tenant, route="user")
    task = await _pending(inbox, handle)
    for host in (FastAPI(), Starlette(routes=[Mount("/inbox", app=inbox.app)])):
        if isinstance(host, FastAPI):
            host.mount("/inbox", inbox.app)
        transport = httpx.ASGITransport(app=host)
        async with httpx.AsyncClient(transport=transport, base_url="http://host") as http:
            mine = await http.get("/inbox/api/inbox", headers=bearer("ann", tenant=tenant))
            assert [t["id"] for t in mine.json()["items"]] == [task], mine.text
            _problem(await http.get(f"/inbox/api/tasks/{task}", headers=bearer("ann", tenant=_tenant())), 404)
            assert (await http.get("/inbox/api/openapi.json")).json()["openapi"].startswith("3.1")
            signed_in = await http.post("/inbox/api/session/dev", json={"user": "dora"})
            cookies = signed_in.headers.get_list("set-cookie")
            assert len(cookies) == 2 and all("Path=/inbox;" in c and "SameSite=lax" in c for c in cookies), (
                cookies
            )
            assert "HttpOnly" in next(c for c in cookies if c.startswith("dwf_session="))


async def test_the_mirror_matches_temporal_after_the_api(
    server: Any, writer: MirrorWriter, inbox: Inbox
) -> None:
    report = await audit(inbox.client.temporal, writer, inbox.touched)
    assert report.checked == len(set(inbox.touched)) and report.clean, report.mismatches


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_dwf_serve_runs_the_api_under_uvicorn_until_sigterm(
    server: Any, database_url: str, worker: Any, tmp_path: Path, assert_eventually: Eventually
) -> None:
    users = tmp_path / "users.json"
    users.write_text(json.dumps({"dora": {"groups": [CLERKS], "tenant_id": "dev-tenant"}}))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DWF_INBOX_")}
    env |= {
        "DWF_TEMPORAL_ADDRESS": server.target,
        "DWF_DATABASE_URL": database_url,
        "DWF_TASK_QUEUE": worker.task_queue,
        "DWF_INBOX_JWT_SECRET": JWT_SECRET,
    }
    command = [sys.executable, "-m", "sdk._cli", "serve", "--port", str(port), "--dev-users", str(users)]
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            *command, "--insecure-cookies", env=env, stdout=sink, stderr=sink
        )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:

            async def up() -> httpx.Response:
                try:
                    return await http.get("/api/openapi.json")
                except httpx.TransportError as exc:
                    raise AssertionError(f"not listening yet: {exc}") from None

            assert (await assert_eventually(up, timeout=30)).json()["openapi"].startswith("3.1")
            mine = await http.get("/api/inbox", headers=bearer("ann", tenant=f"t-{uuid.uuid4().hex[:6]}"))
            assert mine.status_code == 200 and mine.json()["total"] == 0
            signed_in = await http.post("/api/session/dev", json={"user": "dora"})
            assert signed_in.status_code == 200 and signed_in.json()["csrf_token"]
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0, log.read_text()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert "Traceback" not in log.read_text()
