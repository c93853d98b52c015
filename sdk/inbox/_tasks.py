"""The task endpoints: the caller's inbox, task lists, a task's detail, and its actions.

Reads are the mirror's queries scoped to the caller's tenant; actions are the client's
commands acting as the caller, so the client's checks (the task is pending, the caller may act,
the data fits the form) run before anything is sent, and a refusal changes nothing.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel

from sdk import PermissionDeniedError, TaskInfo, TaskNotPendingError, TaskStatus, UnauthenticatedCommandError
from sdk.mirror import Page, TaskOrder, TaskRow, VoteRow, VoteState
from sdk.runtime import separation_reason, vote_denial

from ._caller import Caller, get_caller, policy_view
from ._problems import Problem, problem_response
from ._schemas import (
    CommentRequest,
    CompleteRequest,
    PriorityRequest,
    ReassignRequest,
    TaskDetail,
    VoteRequest,
)

__all__ = ["router"]

_PROBLEMS = {status: {"model": Problem} for status in (401, 403, 404, 409, 413, 422)}
router = APIRouter(tags=["tasks"], responses=_PROBLEMS)  # type: ignore[arg-type]
CallerDep = Annotated[Caller, Depends(get_caller)]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]
Offset = Annotated[int, Query(ge=0, le=2**31 - 1, description="Rows to skip")]
_TRAIL_LIMIT = 500
Order = Annotated[
    TaskOrder,
    Query(description="due: soonest due first; priority: highest first; follow_up: soonest follow-up first"),
]
MinPriority = Annotated[int | None, Query(ge=0, le=100, description="Only tasks of at least this priority")]
FollowUpBefore = Annotated[
    datetime | None, Query(description="Only tasks whose follow-up date is before this time")
]


def aware(moment: datetime | None) -> datetime | None:
    """A time from a query string; one without a timezone is taken as UTC."""
    if moment is None or moment.utcoffset() is not None:
        return moment
    return moment.replace(tzinfo=UTC)


_NOT_MODIFIED = {304: {"description": "Unchanged since the ETag given in If-None-Match"}}


def etag_response(request: Request, model: BaseModel) -> Response:
    """The answer as JSON with a strong ETag; 304 Not Modified when the client has it already."""
    body = model.model_dump_json().encode()
    tag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": tag, "Cache-Control": "private, no-cache"}
    wanted = request.headers.get("if-none-match", "")
    if tag in [t.strip().removeprefix("W/") for t in wanted.split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


@router.get(
    "/inbox",
    response_model=Page[TaskRow],
    summary="My inbox",
    responses=_NOT_MODIFIED,  # type: ignore[arg-type]
)
async def inbox(
    request: Request,
    caller: CallerDep,
    due_before: Annotated[datetime | None, Query(description="Only tasks due before this time")] = None,
    include_claimed_by_others: Annotated[
        bool, Query(description="Also group tasks another member has claimed")
    ] = True,
    order_by: Order = "due",
    min_priority: MinPriority = None,
    follow_up_before: FollowUpBefore = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Response:
    """The pending tasks the caller may act on, soonest due first (or by ``order_by``).

    A quorum task shows to its voters (or its group's members) until they have voted, and
    never to a user separation of duties keeps out.

    Poll it with ``If-None-Match: <the last ETag>``: the answer is ``304`` until a task
    appears, changes or is taken by someone else.
    """
    page = await caller.queries.inbox(
        caller.identity.user,
        caller.identity.groups,
        tenant_id=caller.scope,
        due_before=aware(due_before),
        include_claimed_by_others=include_claimed_by_others,
        order_by=order_by,
        min_priority=min_priority,
        follow_up_before=aware(follow_up_before),
        limit=limit,
        offset=offset,
    )
    return etag_response(request, page)


@router.get("/tasks", response_model=Page[TaskRow], summary="Pending tasks")
async def pending_tasks(
    caller: CallerDep,
    assignee: Annotated[str | None, Query(description="Only tasks assigned to this user")] = None,
    group: Annotated[list[str] | None, Query(description="Only tasks of this group (repeatable)")] = None,
    overdue: Annotated[bool, Query(description="Only tasks past their due time")] = False,
    due_before: Annotated[datetime | None, Query(description="Only tasks due before this time")] = None,
    order_by: Order = "due",
    min_priority: MinPriority = None,
    follow_up_before: FollowUpBefore = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[TaskRow]:
    """Pending tasks of the caller's tenant, soonest due first.

    An administrator lists any; others list their own (``assignee`` = themselves) or their
    groups' (``group`` among their groups).
    """
    identity = caller.identity
    if not identity.admin:
        own = assignee == identity.user or (
            assignee is None and bool(group) and set(group or ()) <= set(identity.groups)
        )
        if not own or (group and not set(group) <= set(identity.groups)):
            raise HTTPException(403, "list your own tasks (assignee=<you>) or your groups' (group=<group>)")
    cutoff = datetime.now(UTC) if overdue else aware(due_before)
    page: Page[TaskRow] = await caller.queries.pending_tasks(
        tenant_id=caller.scope,
        assignee_id=assignee,
        group=group,
        due_before=cutoff,
        order_by=order_by,
        min_priority=min_priority,
        follow_up_before=aware(follow_up_before),
        limit=limit,
        offset=offset,
    )
    return page


@router.get(
    "/tasks/{task_id}",
    response_model=TaskDetail,
    summary="A task, its form, comments and trail",
    responses=_NOT_MODIFIED,  # type: ignore[arg-type]
)
async def task_detail(task_id: str, request: Request, caller: CallerDep) -> Response:
    """A task the caller may see (another tenant's is not found), with its form's JSON schema,
    its comments, who held it when and, for a quorum task, its votes and whether the caller
    may vote now. Poll it with ``If-None-Match`` like the inbox."""
    row = await caller.task(task_id)
    comments = await caller.queries.task_comments(row.id, limit=_TRAIL_LIMIT)
    assignments = await caller.queries.task_assignments(row.id, limit=_TRAIL_LIMIT)
    votes = (await caller.queries.task_votes(row.id, limit=_TRAIL_LIMIT)).items if row.quorum else []
    detail = TaskDetail(
        task=row,
        form_schema=row.form_schema or {},
        comments=comments.items,
        assignments=assignments.items,
        votes=votes,
        may_vote=_may_vote(caller, row, votes),
    )
    return etag_response(request, detail)


def _voted(votes: list[VoteRow], user: str) -> bool:
    return any(v.voter == user and v.state in (VoteState.APPROVED, VoteState.REJECTED) for v in votes)


def _may_vote(caller: Caller, row: TaskRow, votes: list[VoteRow]) -> bool:
    """The workflow's vote rules on the mirror's rows (the client checks again on a vote)."""
    if row.quorum is None or row.status is not TaskStatus.PENDING:
        return False
    user, info = caller.identity.user, policy_view(row)
    return (
        separation_reason(info, user) is None
        and vote_denial(info, user, caller.identity.groups) is None
        and not _voted(votes, user)
    )


@router.post("/tasks/{task_id}/claim", response_model=TaskInfo, summary="Claim a group task")
async def claim(task_id: str, caller: CallerDep) -> TaskInfo:
    """Claim a task of one of the caller's groups; of two claimants exactly one wins (409)."""
    row = await caller.task(task_id)
    return await caller.client.claim_task(row.id, workflow_id=row.workflow_id, **caller.acting())


@router.post("/tasks/{task_id}/release", response_model=TaskInfo, summary="Release a claimed task")
async def release(task_id: str, caller: CallerDep) -> TaskInfo:
    """Give a claimed task back to its group (its claimant or an administrator)."""
    row = await caller.task(task_id)
    return await caller.client.release_task(row.id, workflow_id=row.workflow_id, **caller.acting())


@router.post("/tasks/{task_id}/complete", response_model=TaskInfo, summary="Complete a task")
async def complete(task_id: str, body: CompleteRequest, caller: CallerDep) -> TaskInfo:
    """Submit the task's form; 422 lists each failing field, and nothing is sent."""
    row = await caller.task(task_id)
    return await caller.client.complete_task(
        row.id, body.data, comment=body.comment, workflow_id=row.workflow_id, **caller.acting()
    )


@router.post("/tasks/{task_id}/reassign", response_model=TaskInfo, summary="Reassign a task")
async def reassign(task_id: str, body: ReassignRequest, caller: CallerDep) -> TaskInfo:
    """Hand a task to another user and/or group, with a reason (the assignee, the claimant or
    an administrator)."""
    row = await caller.task(task_id)
    return await caller.client.reassign_task(
        row.id,
        to_user=body.to_user,
        to_group=body.to_group,
        reason=body.reason,
        workflow_id=row.workflow_id,
        **caller.acting(),
    )


@router.post("/tasks/{task_id}/comments", response_model=TaskInfo, summary="Comment on a task")
async def comment(task_id: str, body: CommentRequest, caller: CallerDep) -> TaskInfo:
    """Add a comment (anyone who may see the task)."""
    row = await caller.task(task_id)
    return await caller.client.comment_task(row.id, body.body, workflow_id=row.workflow_id, **caller.acting())


@router.post(
    "/tasks/{task_id}/votes",
    response_model=TaskInfo,
    summary="Vote on a quorum task",
)
async def vote(task_id: str, body: VoteRequest, caller: CallerDep) -> Response | TaskInfo:
    """Vote with the step's form (its ``approved`` field is the vote); answers once the vote
    counted, with the task (``completed`` when this vote decided it).

    Refusals name their rule in the problem's ``rule``: ``already_voted`` and ``not_a_voter``
    and ``separation_of_duties`` (403), ``quorum_decided`` (409: the task closed).
    """
    row = await caller.task(task_id)
    if row.quorum is not None and row.status is TaskStatus.COMPLETED:
        # Decided already: the mirror says so even once the run has ended (the client would
        # then answer that the instance is gone).
        detail = f"task {row.id} was decided (by {row.completed_by}): it takes no more votes"
        return problem_response(409, detail, kind="TaskNotPendingError", rule="quorum_decided")
    acting = {k: v for k, v in caller.acting().items() if k != "admin"}  # an administrator has no vote
    try:
        return await caller.client.vote_task(
            row.id, body.data, comment=body.comment, workflow_id=row.workflow_id, **acting
        )
    except TaskNotPendingError as exc:
        # The deciding vote landed between the mirror read and this one.
        return problem_response(409, str(exc), kind=type(exc).__name__, rule="quorum_decided")
    except UnauthenticatedCommandError:
        raise
    except PermissionDeniedError as exc:
        return problem_response(403, str(exc), kind=type(exc).__name__, rule=await _vote_rule(caller, row))


async def _vote_rule(caller: Caller, row: TaskRow) -> str:
    """Which vote rule refused the caller, read from the mirror's rows."""
    user = caller.identity.user
    if separation_reason(policy_view(row), user) is not None:
        return "separation_of_duties"
    votes = await caller.queries.task_votes(row.id, limit=_TRAIL_LIMIT)
    return "already_voted" if _voted(votes.items, user) else "not_a_voter"


@router.post("/tasks/{task_id}/priority", response_model=TaskInfo, summary="Change priority or follow-up")
async def prioritize(task_id: str, body: PriorityRequest, caller: CallerDep) -> TaskInfo:
    """Change a task's priority and/or follow-up date (the assignee, the claimant or an
    administrator); recorded in the task's trail with the reason."""
    row = await caller.task(task_id)
    return await caller.client.prioritize_task(
        row.id,
        priority=body.priority,
        follow_up_at=aware(body.follow_up_at),
        reason=body.reason,
        workflow_id=row.workflow_id,
        **caller.acting(),
    )
