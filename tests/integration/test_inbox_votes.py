"""Approval policies through the inbox's HTTP API, on the real dev server, SQLite and PostgreSQL.

Votes on a quorum task (the votes so far in the task's detail; two last votes at once, one
counted; each refusal names its rule: already voted, separation of duties, quorum decided), who
sees a quorum task (its listed voters, voted or not; never the user separation of duties keeps
out), priority changes and
the inbox sorted and filtered by priority and follow-up date, and an administrator of all
tenants controlling an instance. The module ends with a clean audit of every instance it
touched.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from sdk import ALL_TENANTS, InstanceHandle, PermissionDeniedError, TaskStatus, WorkflowStatus
from sdk.inbox import PROBLEM_JSON
from sdk.mirror import MirrorWriter, audit
from tests.integration.inbox_support import Inbox, bearer, mirror_snapshot, open_inbox
from tests.integration.support import Eventually, commands_received
from tests.workflows import policies
from tests.workflows.policies import Purchase

DEFINITIONS = policies.DEFINITIONS


@pytest.fixture(name="inbox", scope="module")
async def fixture_inbox(server: Any, database_url: str, worker: Any) -> Any:
    async with open_inbox(server.target, database_url, worker.task_queue) as inbox:
        yield inbox


def _tenant() -> str:
    return f"tenant-{uuid.uuid4().hex[:8]}"


def _problem(response: httpx.Response, status: int, kind: str, rule: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert (body["status"], body["kind"], body.get("rule")) == (status, kind, rule), body
    if rule is not None:
        assert body["type"] == f"urn:durable-workflows:problem:{kind}:{rule}"
    return body


async def _start(inbox: Inbox, workflow: Any, tenant: str, **fields: Any) -> InstanceHandle[Any]:
    purchase = Purchase(item=f"item-{uuid.uuid4().hex[:6]}", **fields)
    handle = await inbox.client.start(workflow, purchase, tenant_id=tenant, created_by="ann")
    inbox.touched.append(handle.id)
    return handle


async def _cancel(
    inbox: Inbox, handle: InstanceHandle[Any], tenant: str, assert_eventually: Eventually
) -> None:
    """Cancel an instance and wait until its run has closed (the audit compares closed runs)."""
    await inbox.client.cancel(handle.id, reason="done", by="ann", tenant_id=tenant)

    async def closed() -> None:
        assert (await handle.temporal.describe()).close_time is not None

    await assert_eventually(closed, timeout=30)


async def _inbox_ids(http: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> list[str]:
    answer = await http.get("/api/inbox", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    return [row["id"] for row in answer.json()["items"]]


async def test_listed_voters_vote_and_each_refusal_names_its_rule(
    inbox: Inbox, db: Any, assert_eventually: Eventually
) -> None:
    http, tenant = inbox.http, _tenant()
    handle = await _start(inbox, policies.board, tenant, approvers=["vic", "wes", "xia"], urgent=True)
    task = (await handle.next_task(timeout=30)).task_id
    vic, wes, xia = (bearer(u, tenant=tenant) for u in ("vic", "wes", "xia"))

    async def listed() -> None:
        assert task in await _inbox_ids(http, vic)

    await assert_eventually(listed, timeout=30)
    detail = (await http.get(f"/api/tasks/{task}", headers=vic)).json()
    assert detail["may_vote"] is True
    row = detail["task"]
    assert (row["quorum"], row["voters"], row["priority"]) == (2, ["vic", "wes", "xia"], 90)
    assert row["follow_up_at"] is not None and row["excluded_users"] == {"ann": "started this instance"}
    assert {v["voter"]: v["state"] for v in detail["votes"]} == {
        "vic": "pending",
        "wes": "pending",
        "xia": "pending",
        "ann": "excluded",
    }

    # Separation of duties: the starter does not see the task, and as an administrator (who
    # sees every task) is refused by the rule itself. A user who is not a voter sees nothing.
    ann = bearer("ann", tenant=tenant)
    assert task not in await _inbox_ids(http, ann)
    before = await mirror_snapshot(db)
    _problem(await http.get(f"/api/tasks/{task}", headers=ann), 404, "TaskNotFoundError")
    _problem(
        await http.post(f"/api/tasks/{task}/votes", json={"data": {"approved": True}}, headers=ann),
        404,
        "TaskNotFoundError",
    )
    admin_ann = bearer("ann", tenant=tenant, admin=True)
    assert (await http.get(f"/api/tasks/{task}", headers=admin_ann)).json()["may_vote"] is False
    _problem(
        await http.post(f"/api/tasks/{task}/votes", json={"data": {"approved": True}}, headers=admin_ann),
        403,
        "PermissionDeniedError",
        "separation_of_duties",
    )
    zed = bearer("zed", tenant=tenant)
    _problem(await http.get(f"/api/tasks/{task}", headers=zed), 404, "TaskNotFoundError")
    # A vote that does not fit the form is refused field by field.
    bad = await http.post(f"/api/tasks/{task}/votes", json={"data": {"approved": "maybe"}}, headers=vic)
    assert bad.status_code == 422 and [e["field"] for e in bad.json()["errors"]] == ["approved"]
    assert await mirror_snapshot(db) == before

    cast = await http.post(
        f"/api/tasks/{task}/votes", json={"data": {"approved": True}, "comment": "fine"}, headers=vic
    )
    assert cast.status_code == 200, cast.text
    assert cast.json()["status"] == TaskStatus.PENDING.value

    async def voted() -> dict[str, Any]:
        shown: dict[str, Any] = (await http.get(f"/api/tasks/{task}", headers=vic)).json()
        assert {v["voter"]: v["state"] for v in shown["votes"]}["vic"] == "approved"
        return shown

    # The voter still sees the task, may not vote again, and no longer finds it in the inbox.
    shown = await assert_eventually(voted, timeout=30)
    assert shown["may_vote"] is False and task not in await _inbox_ids(http, vic)
    again = await http.post(f"/api/tasks/{task}/votes", json={"data": {"approved": False}}, headers=vic)
    _problem(again, 403, "PermissionDeniedError", "already_voted")

    decided = await http.post(f"/api/tasks/{task}/votes", json={"data": {"approved": True}}, headers=wes)
    assert decided.status_code == 200, decided.text
    assert await handle.result() == {"approved": True, "votes": {"vic": True, "wes": True}}

    async def completed() -> None:
        row = (await http.get(f"/api/tasks/{task}", headers=xia)).json()["task"]
        assert (row["status"], row["completed_by"]) == (TaskStatus.COMPLETED.value, "wes")

    await assert_eventually(completed, timeout=30)
    late = await http.post(f"/api/tasks/{task}/votes", json={"data": {"approved": True}}, headers=xia)
    _problem(late, 409, "TaskNotPendingError", "quorum_decided")


async def test_a_group_quorum_shows_to_members_until_they_vote(
    inbox: Inbox, assert_eventually: Eventually
) -> None:
    http, tenant = inbox.http, _tenant()
    handle = await _start(inbox, policies.four_eyes, tenant)
    task = (await handle.next_task(timeout=30)).task_id
    fay, gus = (bearer(u, groups=(policies.FINANCE,), tenant=tenant) for u in ("fay", "gus"))

    async def listed() -> None:
        assert task in await _inbox_ids(http, fay) and task in await _inbox_ids(http, gus)

    await assert_eventually(listed, timeout=30)
    assert (await http.get(f"/api/tasks/{task}", headers=fay)).json()["may_vote"] is True
    vote = await http.post(f"/api/tasks/{task}/votes", json={"data": {"approved": True}}, headers=fay)
    assert vote.status_code == 200, vote.text

    async def gone_for_fay() -> None:
        assert task not in await _inbox_ids(http, fay)

    await assert_eventually(gone_for_fay, timeout=30)
    assert task in await _inbox_ids(http, gus)
    # A quorum task is voted on: complete and claim are refused, nothing changes.
    refused = await http.post(f"/api/tasks/{task}/complete", json={"data": {"approved": True}}, headers=gus)
    _problem(refused, 422, "InvalidInputError")

    # Two last votes at once: the first the workflow applies decides, the other is refused.
    hal = bearer("hal", groups=(policies.FINANCE,), tenant=tenant)
    answers = await asyncio.gather(
        *(
            http.post(f"/api/tasks/{task}/votes", json={"data": {"approved": True}}, headers=h)
            for h in (gus, hal)
        )
    )
    assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
    _problem(next(a for a in answers if a.status_code == 409), 409, "TaskNotPendingError", "quorum_decided")
    decided = next(a for a in answers if a.status_code == 200).json()
    assert decided["status"] == TaskStatus.COMPLETED.value
    assert [v["voter"] for v in decided["votes"]] == ["fay", decided["completed_by"]]
    await _cancel(inbox, handle, tenant, assert_eventually)


async def test_priority_changes_and_the_inbox_sorted_and_filtered(
    inbox: Inbox, assert_eventually: Eventually
) -> None:
    http, tenant = inbox.http, _tenant()
    urgent = await _start(inbox, policies.owned, tenant, owner="olga", urgent=True)
    calm = await _start(inbox, policies.owned, tenant, owner="olga")
    first = (await urgent.next_task(timeout=30)).task_id
    second = (await calm.next_task(timeout=30)).task_id
    olga = bearer("olga", tenant=tenant)

    async def both() -> None:
        assert await _inbox_ids(http, olga, order_by="priority") == [first, second]

    await assert_eventually(both, timeout=30)
    assert await _inbox_ids(http, olga, min_priority=50) == [first]
    listed = await http.get(
        "/api/tasks", params={"assignee": "olga", "order_by": "priority", "min_priority": 10}, headers=olga
    )
    assert [row["priority"] for row in listed.json()["items"]] == [80, 20]

    # Refused before anything is sent: a priority out of range, a stranger (not found), an
    # unknown order.
    _problem(
        await http.post(f"/api/tasks/{second}/priority", json={"priority": 101}, headers=olga),
        422,
        "RequestValidationError",
    )
    _problem(
        await http.post(
            f"/api/tasks/{second}/priority", json={"priority": 99}, headers=bearer("zed", tenant=tenant)
        ),
        404,
        "TaskNotFoundError",
    )
    _problem(
        await http.get("/api/inbox", params={"order_by": "size"}, headers=olga), 422, "RequestValidationError"
    )

    follow_up = datetime.now(UTC) + timedelta(hours=2)
    changed = await http.post(
        f"/api/tasks/{second}/priority",
        json={"priority": 95, "follow_up_at": follow_up.isoformat(), "reason": "customer waiting"},
        headers=olga,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["priority"] == 95

    async def resorted() -> None:
        assert await _inbox_ids(http, olga, order_by="priority") == [second, first]

    await assert_eventually(resorted, timeout=30)
    soon = (follow_up + timedelta(minutes=1)).isoformat()
    assert await _inbox_ids(http, olga, follow_up_before=soon) == [second]
    assert await _inbox_ids(http, olga, order_by="follow_up") == [second, first]
    for handle in (urgent, calm):
        await _cancel(inbox, handle, tenant, assert_eventually)


async def test_an_administrator_of_all_tenants_controls_any_tenants_instance(
    inbox: Inbox, assert_eventually: Eventually
) -> None:
    http, tenant = inbox.http, _tenant()
    handle = await _start(inbox, policies.owned, tenant, owner="olga")
    await handle.next_task(timeout=30)
    root = bearer("root", tenant=ALL_TENANTS, admin=True)
    instance = str((await inbox.client.queries.instance_by_workflow_id(handle.id)).id)

    async def status(*expected: WorkflowStatus) -> None:
        shown = await http.get(f"/api/instances/{instance}", headers=root)
        assert shown.json()["instance"]["status"] in {s.value for s in expected}, shown.text

    assert (await http.post(f"/api/instances/{instance}/pause", headers=root)).status_code == 202
    await assert_eventually(lambda: status(WorkflowStatus.PAUSED), timeout=30)
    # The client without an identity provider: the admin flag the application gives counts
    # (without it an all-tenants command is refused before anything is sent).
    everywhere = inbox.client.get_instance(handle.id, tenant_id=ALL_TENANTS)
    sent = await commands_received(handle)
    with pytest.raises(PermissionDeniedError, match="only an administrator may act for ALL_TENANTS"):
        await everywhere.resume(by="root")
    assert await commands_received(handle) == sent
    await everywhere.resume(by="root", admin=True)
    await assert_eventually(lambda: status(WorkflowStatus.RUNNING, WorkflowStatus.WAITING), timeout=30)
    assert (await http.post(f"/api/instances/{instance}/cancel", headers=root)).status_code == 202
    await assert_eventually(lambda: status(WorkflowStatus.CANCELED), timeout=30)

    async def closed() -> None:
        assert (await handle.temporal.describe()).close_time is not None

    await assert_eventually(closed, timeout=30)


async def test_the_mirror_matches_temporal_after_the_api(writer: MirrorWriter, inbox: Inbox) -> None:
    report = await audit(inbox.client.temporal, writer, inbox.touched)
    assert report.checked == len(set(inbox.touched)) and report.clean, report.mismatches
