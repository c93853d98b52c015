"""The web inbox in a real headless Chromium, against the real dev server and the SQL mirror.

The inbox application (API and page) runs under uvicorn on a free local port; the browser is
the system's Chromium (Debian's ``chromium`` package, ``/usr/bin/chromium``) driven by
Playwright, which downloads no browser. A person signs in by picking a development user, sees
a task appear without reloading, claims it, submits an invalid form (a field error from the
page's own check, then one only the server knows), a valid one, and watches the instance
finish; the same flow again with the keyboard alone, while another user's claim and release
show up live; and a quorum task that two users vote on through the form until it resolves.
Screenshots are kept under ``tests/artifacts/`` (git-ignored).

SQLite only: the API's own tests cover both databases; these drive the page.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import uvicorn
from fastapi import FastAPI
from playwright.async_api import Browser, Page, Route, async_playwright, expect
from temporalio.worker import Worker

from sdk import DevServer, Identity, InstanceHandle, WorkflowClient
from sdk.inbox import JWTAuthenticator, SessionConfig, create_inbox_app
from sdk.mirror import MirrorWriter
from tests.integration.support import DatabaseFactory, Eventually
from tests.workflows import policies
from tests.workflows.claims import MANAGERS, Claim, ClaimReview, web_claim

CHROMIUM = os.environ.get("DWF_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
TENANT = "acme"
JWT_SECRET = "j" * 32
USERS = {
    "bob": Identity(user="bob", groups=(MANAGERS,), tenant_id=TENANT),
    "cara": Identity(user="cara", groups=(MANAGERS,), tenant_id=TENANT),
    "vic": Identity(user="vic", tenant_id=TENANT),
    "wes": Identity(user="wes", tenant_id=TENANT),
}
# Generous for a shared 2-core machine; the page polls every 2 s.
WAIT_MS = 20_000
expect.set_options(timeout=WAIT_MS)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Inbox:
    """The running inbox: its URL, the client it uses, and the worker's task queue."""

    def __init__(self, url: str, client: WorkflowClient, task_queue: str, app: FastAPI) -> None:
        self.url = url
        self.client = client
        self.task_queue = task_queue
        self.app = app

    async def start_claim(self, amount: float) -> InstanceHandle[Any]:
        return await self.client.start(
            web_claim,
            Claim(employee="ann", amount=amount),
            tenant_id=TENANT,
            created_by="ann",
            task_queue=self.task_queue,
            id=f"web-claim-{uuid.uuid4()}",
        )


@pytest.fixture(scope="module")
async def inbox(
    server: DevServer, new_worker: Any, database_factory: DatabaseFactory
) -> AsyncIterator[Inbox]:
    url = await database_factory.create("sqlite")
    writer = MirrorWriter.from_url(url)
    await writer.upgrade_schema()
    await writer.register_definitions([web_claim, policies.board])
    worker: Worker = new_worker(web_claim, policies.board, mirror=writer)
    client = await WorkflowClient.connect(server.target, database_url=url)
    app = create_inbox_app(
        client,
        authenticator=JWTAuthenticator(secret=JWT_SECRET),
        sessions=SessionConfig(secret="s" * 32, dev_users=USERS, secure=False),
    )
    port = _free_port()
    http = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(http.serve())
    async with worker:
        while not http.started:
            assert not serving.done(), "the inbox server did not start"
            await asyncio.sleep(0.02)
        yield Inbox(f"http://127.0.0.1:{port}/", client, worker.task_queue, app)
        http.should_exit = True
        await serving
    await client.close()
    await writer.close()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    assert os.path.exists(CHROMIUM), f"no Chromium at {CHROMIUM}: scripts/test.sh installs Debian's chromium"
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        await chromium.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    yield opened
    await context.close()
    assert not errors, f"the page raised: {errors}"


def task_row(page: Page, title: str) -> Any:
    return page.get_by_role("row").filter(has=page.get_by_role("link", name=title))


async def test_sign_in_claim_fix_the_form_and_watch_the_instance_finish(
    page: Page, inbox: Inbox, assert_eventually: Eventually
) -> None:
    await page.goto(inbox.url)
    await expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    await page.get_by_label("User").select_option("bob")
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.get_by_role("heading", name="My inbox")).to_be_visible()
    await expect(page.locator("#who-text")).to_have_text("Signed in as bob (groups: managers)")

    # The task appears while the page is open: no reload.
    handle = await inbox.start_claim(120)
    title = "Review 120.00 for ann"
    groups = page.get_by_role("region", name="My groups' tasks")
    await expect(groups.get_by_role("link", name=title)).to_be_visible()
    await groups.get_by_role("button", name=f"Claim {title}").click()
    mine = page.get_by_role("region", name="My tasks")
    await expect(mine.get_by_role("link", name=title)).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "web-inbox-list.png"), full_page=True)
    await mine.get_by_role("link", name=title).click()

    await expect(page.get_by_role("heading", name=title, level=1)).to_be_visible()
    trail = page.get_by_role("region", name="Assignment trail")
    await expect(trail.get_by_role("cell", name="claimed")).to_be_visible()
    diagram = page.get_by_role("list", name="Steps of tests.web_claim, in order, with their states")
    review_step = diagram.locator("[data-step='tests.review_claim']")
    await expect(review_step).to_have_attribute("data-state", "WAITING")
    not_yet = page.get_by_role("region", name="Workflow instance").locator("[data-state='NOT_RUN']")
    await expect(not_yet).to_have_attribute("data-step", "tests.file_claim")
    chart = page.get_by_role("img", name="Diagram of tests.web_claim 1.0.0: each step with its state")

    def chart_node(step: str) -> Any:
        return chart.locator(f"[data-node='{step}']")

    await expect(chart_node("tests.review_claim")).to_have_attribute("data-status", "waiting")
    await expect(chart_node("tests.check_claim")).to_have_attribute("data-status", "succeeded")

    # A comment, then the form: first what the page itself refuses (nothing is sent).
    await page.get_by_label("Add a comment").fill("Checking the receipt.")
    await page.get_by_role("button", name="Post comment").click()
    comments = page.get_by_role("region", name="Comments")
    await expect(comments.get_by_text("Checking the receipt.")).to_be_visible()

    amount = page.get_by_label("Amount")
    await amount.fill("5000")
    await page.get_by_role("button", name="Complete task").click()
    await expect(amount).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#f-amount-error")).to_have_text("Enter a number of at most 1000.")
    await expect(amount).to_be_focused()

    # Then what only the server knows: a rejection must say why (problem details, 422).
    await amount.fill("100")
    await page.get_by_role("button", name="Complete task").click()
    comment = page.get_by_label("Comment", exact=True)
    await expect(comment).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#f-comment-error")).to_contain_text("say why when you reject a claim")
    await expect(amount).not_to_have_attribute("aria-invalid", "true")
    assert (await handle.state()).pending_tasks, "a refused form changed the task"
    await page.screenshot(path=str(ARTIFACTS / "web-inbox-field-error.png"), full_page=True)

    # A valid form: the task completes and the instance runs to its end, shown live.
    await page.get_by_label("Approved").check()
    await page.get_by_role("button", name="Complete task").click()
    await expect(page.locator("#task-outcome")).to_have_text("This task is completed by bob.")
    await expect(page.locator("#instance-status")).to_have_attribute("data-status", "COMPLETED")
    filed = diagram.locator("[data-step='tests.file_claim']")
    await expect(filed).to_have_attribute("data-state", "SUCCEEDED")
    await expect(chart_node("tests.file_claim")).to_have_attribute("data-status", "succeeded")
    await page.screenshot(path=str(ARTIFACTS / "web-inbox-completed.png"), full_page=True)
    assert await handle.result() == "filed"


async def press_until_focused(page: Page, selector: str, *, key: str = "Tab", limit: int = 60) -> None:
    """Press ``key`` until the element matching ``selector`` has the focus (keyboard only)."""
    for _ in range(limit):
        if await page.evaluate("(s) => document.activeElement?.matches(s) ?? false", selector):
            return
        await page.keyboard.press(key)
    raise AssertionError(f"{selector} never got the focus with {key}")


async def test_keyboard_only_with_live_claims_by_someone_else(
    page: Page, inbox: Inbox, assert_eventually: Eventually
) -> None:
    handle = await inbox.start_claim(80)
    title = "Review 80.00 for ann"
    task = (await handle.next_task(timeout=15)).task_id

    await page.goto(inbox.url)
    await press_until_focused(page, "#dev-user")
    await page.keyboard.press("ArrowDown")  # bob → cara? the list is sorted: bob first
    await page.keyboard.press("ArrowUp")
    await expect(page.locator("#dev-user")).to_have_value("bob")
    await press_until_focused(page, "#dev-signin button")
    await page.keyboard.press("Enter")
    row = task_row(page, title)
    await expect(row).to_be_visible()

    # Another manager claims it, then gives it back: bob's open page shows both, live.
    await handle.claim_task(task, user="cara", groups=[MANAGERS])
    await expect(row.get_by_role("cell", name="cara")).to_be_visible()
    await expect(row.get_by_role("button", name=f"Claim {title}")).to_have_count(0)
    await handle.release_task(task, user="cara", groups=[MANAGERS])
    await expect(row.get_by_role("button", name=f"Claim {title}")).to_be_visible()

    await press_until_focused(page, f"[data-task='{task}'] button")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("region", name="My tasks").get_by_role("link", name=title)).to_be_visible()
    await press_until_focused(page, f"[data-task='{task}'] a")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name=title, level=1)).to_be_focused()

    await press_until_focused(page, "#f-approved")
    await page.keyboard.press("Space")
    await press_until_focused(page, "#f-amount")
    await page.keyboard.type("80")
    await press_until_focused(page, "#complete")
    await page.keyboard.press("Enter")
    await expect(page.locator("#task-outcome")).to_have_text("This task is completed by bob.")
    await expect(page.locator("#instance-status")).to_have_attribute("data-status", "COMPLETED")
    await expect(page.locator("#live")).not_to_be_empty()
    await page.screenshot(path=str(ARTIFACTS / "web-inbox-keyboard.png"), full_page=True)
    assert await handle.result() == "filed"


async def sign_in(page: Page, url: str, user: str) -> None:
    await page.goto(url)
    await page.get_by_label("User").select_option(user)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.locator("#who-text")).to_contain_text(f"Signed in as {user}")


async def test_a_slow_task_page_leaves_the_focus_where_the_user_put_it(page: Page, inbox: Inbox) -> None:
    handle = await inbox.start_claim(70)
    task = (await handle.next_task(timeout=15)).task_id
    await sign_in(page, inbox.url, "bob")

    # The task's answer is held back until bob has moved into the comment box: when it comes,
    # the page fills in the task around him and leaves his focus (and his typing) alone.
    released = asyncio.Event()

    async def slow(route: Route) -> None:
        await released.wait()
        await route.continue_()

    await page.route(f"**/api/tasks/{task}", slow)
    await page.goto(f"{inbox.url}#/tasks/{task}")
    comment = page.locator("#comment-body")
    await comment.focus()
    await page.keyboard.type("Checking the receipt")
    released.set()
    await expect(page.locator("#instance-status")).to_have_attribute("data-status", "WAITING")
    await expect(page.locator("#f-approved")).to_be_visible()
    await expect(comment).to_be_focused()
    await page.keyboard.type(" now")
    await expect(comment).to_have_value("Checking the receipt now")

    await page.unroute(f"**/api/tasks/{task}")
    await handle.complete_task(task, ClaimReview(approved=True, amount=70), user="bob", groups=[MANAGERS])
    assert await handle.result() == "filed"


async def test_two_voters_decide_a_quorum_task_through_the_form(page: Page, inbox: Inbox) -> None:
    purchase = policies.Purchase(item=f"laptop-{uuid.uuid4().hex[:4]}", approvers=["vic", "wes"], urgent=True)
    handle = await inbox.client.start(
        policies.board, purchase, tenant_id=TENANT, created_by="ann", task_queue=inbox.task_queue
    )
    title = f"Board vote on {purchase.item}"
    await sign_in(page, inbox.url, "vic")
    await page.get_by_label("Sort by").select_option("priority")
    row = task_row(page, title)
    await expect(row.get_by_role("cell", name="vote: 2 needed")).to_be_visible()
    await expect(row.locator("td.priority")).to_have_text("90")
    await row.get_by_role("link", name=title).click()

    votes = page.get_by_role("region", name="Votes")
    await expect(votes.locator("[data-voter='wes']")).to_contain_text("not voted yet")
    await page.get_by_label("Approved").check()
    await page.get_by_role("button", name="Cast my vote").click()
    await expect(votes.locator("[data-voter='vic']")).to_contain_text("approved")
    await expect(page.locator("#form-note")).to_have_text("You voted already (approved).")
    await expect(page.get_by_role("button", name="Cast my vote")).to_be_disabled()
    await page.screenshot(path=str(ARTIFACTS / "web-inbox-votes.png"), full_page=True)

    url = page.url
    await page.get_by_role("button", name="Sign out").click()
    await sign_in(page, inbox.url, "wes")
    await page.goto(url)
    await page.get_by_label("Approved").check()
    await page.get_by_role("button", name="Cast my vote").click()
    await expect(page.locator("#task-outcome")).to_have_text("This task is completed by wes.")
    await expect(votes.locator("[data-voter='wes']")).to_contain_text("approved")
    assert await handle.result() == {"approved": True, "votes": {"vic": True, "wes": True}}


async def test_mounted_page_points_at_its_mount_and_forbids_foreign_content(inbox: Inbox) -> None:
    host = FastAPI()
    host.mount("/inbox", inbox.app)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=host), base_url="http://app") as web:
        page = await web.get("/inbox/")
        assert page.status_code == 200
        assert '<base href="/inbox/">' in page.text
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert page.headers["x-content-type-options"] == "nosniff"
        script = await web.get("/inbox/assets/inbox.js")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
        assert (await web.get("/inbox/assets/%2e%2e/_web.py")).status_code == 404
        assert (await web.get("/inbox/api/session/users")).json() == ["bob", "cara", "vic", "wes"]


async def test_production_sign_in_with_a_token(page: Page, inbox: Inbox) -> None:
    await page.goto(inbox.url)
    token = page.get_by_label("Token")
    await token.fill("not-a-token")
    await page.get_by_role("button", name="Sign in with token").click()
    await expect(page.get_by_role("alert")).to_contain_text("Sign-in failed")
    claims = {"sub": "dana", "groups": [MANAGERS], "tenant_id": TENANT, "exp": int(time.time()) + 600}
    await token.fill(jwt.encode(claims, JWT_SECRET, algorithm="HS256"))
    await page.get_by_role("button", name="Sign in with token").click()
    await expect(page.locator("#who-text")).to_have_text("Signed in as dana (groups: managers)")
    await expect(page.get_by_role("heading", name="My inbox")).to_be_focused()
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    assert "dwf_session" not in {c["name"] for c in await page.context.cookies()}
