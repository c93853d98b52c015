"""The SQL mirror: tables that project Temporal's state, their migrations, the projection of
events to rows and its writer, the query API, and audit and rebuild from Temporal's history.

Temporal is the source of truth; these tables are a projection of it, written by idempotent
upserts and read with plain SQL (SQLite through aiosqlite by default, PostgreSQL through asyncpg
in production)::

    from sdk.mirror import MirrorQueries, create_engine, session_factory, upgrade

    await upgrade("sqlite+aiosqlite:///flows.db")
    queries = MirrorQueries(session_factory(create_engine("sqlite+aiosqlite:///flows.db")))
    page = await queries.inbox("alice", ["managers"], tenant_id="acme")
"""

from ._base import NAMING_CONVENTION, JSONType, MirrorBase, UTCDateTime, UUIDAuditMixin
from ._closing import close_instances, record_termination, termination_error
from ._database import async_url, create_engine, session_factory, upsert
from ._delegations import DelegationStore
from ._graphs import (
    GRAPH_KIND,
    graph_bundle,
    graph_versions,
    instance_diagram,
    load_graph,
    register_graph,
    set_graph_active,
    workflow_known,
)
from ._metrics import MirrorMetrics
from ._migrate import (
    VERSION_TABLE,
    alembic_config,
    current_revision,
    downgrade,
    head_revision,
    upgrade,
)
from ._models import (
    AssignmentAction,
    DelegationModel,
    HumanTaskModel,
    StepExecutionModel,
    TaskAssignmentModel,
    TaskCommentModel,
    TaskVoteModel,
    VoteState,
    WorkflowDefinitionModel,
    WorkflowInstanceModel,
)
from ._projection import definition_id_for
from ._queries import DEFAULT_LIMIT, DEFAULT_TOTAL_CAP, MirrorQueries, TaskOrder
from ._reconcile import AuditReport, EventCapture, Mismatch, audit, rebuild, rebuild_instance, replay_batches
from ._rows import AssignmentRow, CommentRow, DelegationRow, InstanceRow, Page, StepRow, TaskRow, VoteRow
from ._tenant import TenantQueries
from ._writer import MirrorWriter

__all__ = [
    # Tables (the seed's four, then the task lifecycle's two)
    "WorkflowDefinitionModel",
    "WorkflowInstanceModel",
    "StepExecutionModel",
    "HumanTaskModel",
    "TaskCommentModel",
    "TaskAssignmentModel",
    "AssignmentAction",
    # Approval policies: votes and exclusions per task and user; substitutes of absent users
    "TaskVoteModel",
    "VoteState",
    "DelegationModel",
    "DelegationStore",
    # Declarative base and column types
    "MirrorBase",
    "UUIDAuditMixin",
    "UTCDateTime",
    "JSONType",
    "NAMING_CONVENTION",
    # Engines, sessions, writes
    "async_url",
    "create_engine",
    "session_factory",
    "upsert",
    # Migrations
    "VERSION_TABLE",
    "alembic_config",
    "upgrade",
    "downgrade",
    "current_revision",
    "head_revision",
    # Queries
    "MirrorQueries",
    "TenantQueries",
    "DEFAULT_LIMIT",
    "DEFAULT_TOTAL_CAP",
    "Page",
    "TaskOrder",
    "VoteRow",
    "DelegationRow",
    "TaskRow",
    "InstanceRow",
    "StepRow",
    "CommentRow",
    "AssignmentRow",
    # Writes: events and attempts to rows (the worker's event sink)
    "MirrorWriter",
    "MirrorMetrics",
    "definition_id_for",
    # Closings no workflow reports (terminate, execution timeout)
    "close_instances",
    "record_termination",
    "termination_error",
    # Audit and rebuild from Temporal's history
    "AuditReport",
    "EventCapture",
    "Mismatch",
    "audit",
    "rebuild",
    "rebuild_instance",
    "replay_batches",
    # Graph definitions stored in workflow_definitions, and instance diagrams
    "GRAPH_KIND",
    "graph_bundle",
    "graph_versions",
    "instance_diagram",
    "load_graph",
    "register_graph",
    "set_graph_active",
    "workflow_known",
]
