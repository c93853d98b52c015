"""The mirror's metadata: the seed's tables kept exactly, the extensions and indexes added."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateTable

import sdk.mirror
from sdk._types import StepStatus, StepType, WorkflowStatus
from sdk.mirror import (
    AssignmentAction,
    DelegationModel,
    HumanTaskModel,
    MirrorBase,
    StepExecutionModel,
    TaskAssignmentModel,
    TaskCommentModel,
    TaskVoteModel,
    UTCDateTime,
    WorkflowDefinitionModel,
    WorkflowInstanceModel,
)
from sdk.mirror._base import TextUUID, column_values

AUDIT = ["id", "created_at", "updated_at"]

# The seed's columns, in the seed's order, then the extensions. A change here is a schema change:
# it needs a migration (tests/integration/test_mirror_schema.py checks that they agree).
COLUMNS = {
    "workflow_definitions": [
        "name",
        "version",
        "description",
        "definition_json",
        "is_active",
        "workflow_type",
    ],
    "workflow_instances": [
        "definition_id",
        "workflow_name",
        "workflow_version",
        "status",
        "current_step",
        "context_data",
        "metadata",
        "error",
        "started_at",
        "completed_at",
        "tenant_id",
        "created_by",
        "workflow_id",
        "run_id",
        "task_queue",
        "last_event_seq",
        "history_position",
        "history_clock",
    ],
    "workflow_step_executions": [
        "instance_id",
        "step_name",
        "step_type",
        "status",
        "input_data",
        "output_data",
        "error",
        "started_at",
        "completed_at",
        "assigned_to",
        "completed_by",
        "step_seq",
        "attempts",
        "workflow_id",
    ],
    "workflow_human_tasks": [
        "instance_id",
        "step_execution_id",
        "step_name",
        "title",
        "description",
        "form_schema",
        "assignee_id",
        "assignee_group",
        "due_at",
        "reminder_at",
        "status",
        "completed_at",
        "completed_by",
        "tenant_id",
        "workflow_id",
        "claimed_by",
        "claimed_at",
        "form_data",
        "comment",
        "require_claim",
        "history_position",
        "history_clock",
        "quorum",
        "reject_on",
        "voters",
        "excluded_users",
        "priority",
        "follow_up_at",
        "on_behalf_of",
        "voters_on_behalf",
    ],
    "workflow_task_comments": ["task_id", "instance_id", "author", "body", "posted_at"],
    "workflow_task_assignments": [
        "task_id",
        "action",
        "from_assignee",
        "to_assignee",
        "by_user",
        "reason",
        "at",
        "on_behalf_of",
    ],
    "workflow_task_votes": [
        "task_id",
        "instance_id",
        "voter",
        "state",
        "approved",
        "form_data",
        "comment",
        "voted_at",
        "on_behalf_of",
        "reason",
    ],
    "workflow_delegations": [
        "tenant_id",
        "user_id",
        "substitute_id",
        "starts_at",
        "ends_at",
        "reason",
        "created_by",
        "ended_at",
        "ended_by",
    ],
}

SEED_INDEXES = {
    ("workflow_definitions", "ix_workflow_definitions_name_version", ("name", "version"), True),
    ("workflow_definitions", "ix_workflow_definitions_name_active", ("name", "is_active"), False),
    ("workflow_definitions", "ix_workflow_definitions_name", ("name",), False),
    ("workflow_instances", "ix_workflow_instances_status", ("status",), False),
    ("workflow_instances", "ix_workflow_instances_workflow_name", ("workflow_name",), False),
    ("workflow_instances", "ix_workflow_instances_tenant_id", ("tenant_id",), False),
    ("workflow_instances", "ix_workflow_instances_created_by", ("created_by",), False),
    ("workflow_step_executions", "ix_step_executions_instance_id", ("instance_id",), False),
    ("workflow_step_executions", "ix_step_executions_step_name", ("step_name",), False),
    ("workflow_step_executions", "ix_step_executions_status", ("status",), False),
    ("workflow_human_tasks", "ix_human_tasks_assignee_id", ("assignee_id",), False),
    ("workflow_human_tasks", "ix_human_tasks_assignee_group", ("assignee_group",), False),
    ("workflow_human_tasks", "ix_human_tasks_status", ("status",), False),
    ("workflow_human_tasks", "ix_human_tasks_due_at", ("due_at",), False),
}

EXTENSION_INDEXES = {
    ("workflow_instances", "ix_workflow_instances_workflow_id", ("workflow_id",), False),
    ("workflow_instances", "ix_workflow_instances_tenant_id_status", ("tenant_id", "status"), False),
    (
        "workflow_instances",
        "ix_workflow_instances_name_status_created_at",
        ("workflow_name", "status", "created_at"),
        False,
    ),
    ("workflow_human_tasks", "ix_human_tasks_status_assignee_id", ("status", "assignee_id"), False),
    ("workflow_human_tasks", "ix_human_tasks_status_assignee_group", ("status", "assignee_group"), False),
    (
        "workflow_human_tasks",
        "ix_human_tasks_tenant_id_status_due_at",
        ("tenant_id", "status", "due_at"),
        False,
    ),
    ("workflow_human_tasks", "ix_human_tasks_instance_id", ("instance_id",), False),
    ("workflow_human_tasks", "ix_human_tasks_step_execution_id", ("step_execution_id",), False),
    ("workflow_task_comments", "ix_task_comments_task_id_posted_at", ("task_id", "posted_at"), False),
    ("workflow_task_comments", "ix_task_comments_instance_id", ("instance_id",), False),
    ("workflow_task_assignments", "ix_task_assignments_task_id_at", ("task_id", "at"), False),
    ("workflow_human_tasks", "ix_human_tasks_status_priority", ("status", "priority"), False),
    ("workflow_human_tasks", "ix_human_tasks_status_follow_up_at", ("status", "follow_up_at"), False),
    (
        "workflow_human_tasks",
        "ix_human_tasks_pending_tenant_assignee_due",
        ("tenant_id", "assignee_id", "due_at", "created_at", "id"),
        False,
    ),
    (
        "workflow_human_tasks",
        "ix_human_tasks_pending_tenant_group_due",
        ("tenant_id", "assignee_group", "due_at", "created_at", "id"),
        False,
    ),
    ("workflow_task_votes", "ix_task_votes_task_id_voter", ("task_id", "voter"), True),
    ("workflow_task_votes", "ix_task_votes_voter_state", ("voter", "state"), False),
    ("workflow_task_votes", "ix_task_votes_instance_id", ("instance_id",), False),
    (
        "workflow_delegations",
        "ix_delegations_tenant_id_user_id_starts_at",
        ("tenant_id", "user_id", "starts_at"),
        False,
    ),
}


def _table(name: str) -> sa.Table:
    return MirrorBase.metadata.tables[name]


def test_tables_and_columns_are_the_seed_plus_extensions() -> None:
    assert set(MirrorBase.metadata.tables) == set(COLUMNS)
    for name, columns in COLUMNS.items():
        assert [c.name for c in _table(name).columns] == ["id", *columns, "created_at", "updated_at"]


def test_model_classes_map_the_tables() -> None:
    assert {
        model.__tablename__
        for model in (
            WorkflowDefinitionModel,
            WorkflowInstanceModel,
            StepExecutionModel,
            HumanTaskModel,
            TaskCommentModel,
            TaskAssignmentModel,
            TaskVoteModel,
            DelegationModel,
        )
    } == set(COLUMNS)
    # The seed's attribute for the "metadata" column.
    assert WorkflowInstanceModel.__mapper__.column_attrs["metadata_"].columns[0].name == "metadata"


def test_indexes() -> None:
    actual = {
        (table.name, index.name, tuple(c.name for c in index.columns), bool(index.unique))
        for table in MirrorBase.metadata.tables.values()
        for index in table.indexes
    }
    assert actual == SEED_INDEXES | EXTENSION_INDEXES


def test_run_id_is_unique_and_constraints_follow_the_naming_convention() -> None:
    instances = _table("workflow_instances")
    uniques = [c for c in instances.constraints if isinstance(c, sa.UniqueConstraint)]
    assert [(u.name, [c.name for c in u.columns]) for u in uniques] == [
        ("uq_workflow_instances_run_id", ["run_id"])
    ]
    for table in MirrorBase.metadata.tables.values():
        assert table.primary_key.name == f"pk_{table.name}"
        assert [c.name for c in table.primary_key.columns] == ["id"]
        for fk in table.foreign_key_constraints:
            assert fk.name is not None and len(fk.name) <= 63, fk.name  # PostgreSQL's identifier limit


def test_every_foreign_key_cascades() -> None:
    fks = {
        (table.name, fk.column_keys[0], fk.referred_table.name, fk.ondelete)
        for table in MirrorBase.metadata.tables.values()
        for fk in table.foreign_key_constraints
    }
    assert fks == {
        ("workflow_instances", "definition_id", "workflow_definitions", "CASCADE"),
        ("workflow_step_executions", "instance_id", "workflow_instances", "CASCADE"),
        ("workflow_human_tasks", "instance_id", "workflow_instances", "CASCADE"),
        ("workflow_human_tasks", "step_execution_id", "workflow_step_executions", "CASCADE"),
        ("workflow_task_comments", "task_id", "workflow_human_tasks", "CASCADE"),
        ("workflow_task_comments", "instance_id", "workflow_instances", "CASCADE"),
        ("workflow_task_assignments", "task_id", "workflow_human_tasks", "CASCADE"),
        ("workflow_task_votes", "task_id", "workflow_human_tasks", "CASCADE"),
        ("workflow_task_votes", "instance_id", "workflow_instances", "CASCADE"),
    }


@pytest.mark.parametrize(
    ("table", "column", "nullable"),
    [
        ("workflow_definitions", "definition_json", False),
        ("workflow_definitions", "description", True),
        ("workflow_instances", "workflow_id", False),
        ("workflow_instances", "run_id", False),
        ("workflow_instances", "task_queue", True),
        ("workflow_instances", "last_event_seq", False),
        ("workflow_instances", "history_position", False),
        ("workflow_human_tasks", "history_position", False),
        ("workflow_human_tasks", "history_clock", False),
        ("workflow_instances", "started_at", False),
        ("workflow_step_executions", "step_seq", True),
        ("workflow_step_executions", "attempts", False),
        ("workflow_step_executions", "workflow_id", True),
        ("workflow_human_tasks", "tenant_id", True),
        ("workflow_human_tasks", "workflow_id", False),
        ("workflow_human_tasks", "require_claim", False),
        ("workflow_human_tasks", "form_data", True),
        ("workflow_task_assignments", "reason", True),
    ],
)
def test_nullability(table: str, column: str, nullable: bool) -> None:
    assert _table(table).c[column].nullable is nullable


def test_column_types_per_dialect() -> None:
    instances = CreateTable(_table("workflow_instances"))
    pg = str(instances.compile(dialect=postgresql.dialect()))
    lite = str(instances.compile(dialect=sqlite.dialect()))
    assert "context_data JSONB NOT NULL" in pg and "metadata JSONB NOT NULL" in pg
    assert "context_data JSON NOT NULL" in lite
    assert "id UUID NOT NULL" in pg and "id CHAR(36) NOT NULL" in lite  # canonical text, as printed
    assert "started_at TIMESTAMP WITH TIME ZONE NOT NULL" in pg
    # Enums are stored as VARCHAR(50) with no CHECK constraint (new members need no migration).
    assert "status VARCHAR(50) NOT NULL" in pg and "CHECK" not in pg
    assert "title VARCHAR(500) NOT NULL" in str(CreateTable(_table("workflow_human_tasks")).compile())


def test_enum_columns_use_the_sdk_enums() -> None:
    assert _table("workflow_instances").c.status.type.enum_class is WorkflowStatus  # type: ignore[attr-defined]
    assert _table("workflow_step_executions").c.status.type.enum_class is StepStatus  # type: ignore[attr-defined]
    assert _table("workflow_step_executions").c.step_type.type.enum_class is StepType  # type: ignore[attr-defined]
    assert _table("workflow_human_tasks").c.status.type.length == 50  # type: ignore[attr-defined]


def test_assignment_actions() -> None:
    assert [a.value for a in AssignmentAction] == [
        "claim",
        "release",
        "reassign",
        "escalate",
        "delegate",
        "priority",
    ]


class TestUTCDateTime:
    def test_binds_aware_values_in_utc(self) -> None:
        kind = UTCDateTime()
        paris = datetime(2025, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=1)))
        bound = kind.process_bind_param(paris, sqlite.dialect())
        assert bound == datetime(2025, 3, 1, 11, 0, tzinfo=UTC)
        assert bound is not None and bound.utcoffset() == timedelta(0)

    def test_rejects_naive_values(self) -> None:
        with pytest.raises(TypeError, match="timezone-aware"):
            UTCDateTime().process_bind_param(datetime(2025, 3, 1, 12, 0), sqlite.dialect())

    def test_results_are_aware_utc(self) -> None:
        kind = UTCDateTime()
        naive = kind.process_result_value(datetime(2025, 3, 1, 11, 0), sqlite.dialect())
        assert naive == datetime(2025, 3, 1, 11, 0, tzinfo=UTC) and naive is not None and naive.tzinfo is UTC
        other = datetime(2025, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=1)))
        converted = kind.process_result_value(other, postgresql.dialect())
        assert converted is not None and converted.tzinfo is UTC and converted == other
        assert kind.process_bind_param(None, sqlite.dialect()) is None


class TestTextUUID:
    ID = uuid.UUID("3f2b6c1e-9a4d-5e8f-b2c7-0d1e2f3a4b5c")

    def test_every_id_column_uses_it(self) -> None:
        kinds = {
            (table.name, column.name): type(column.type)
            for table in sdk.mirror.MirrorBase.metadata.tables.values()
            for column in table.columns
            if column.name == "id" or (column.name.endswith("_id") and column.name not in _TEXT_IDS)
        }
        assert kinds and set(kinds.values()) == {TextUUID}, kinds

    def test_sqlite_binds_the_canonical_text_whatever_form_it_is_given(self) -> None:
        kind, lite = TextUUID(), sqlite.dialect()
        for given in (self.ID, str(self.ID), self.ID.hex, str(self.ID).upper()):
            assert kind.process_bind_param(given, lite) == "3f2b6c1e-9a4d-5e8f-b2c7-0d1e2f3a4b5c"
        assert kind.process_bind_param(None, lite) is None

    def test_postgresql_binds_a_native_uuid(self) -> None:
        assert TextUUID().process_bind_param(str(self.ID), postgresql.dialect()) == self.ID

    def test_results_are_uuids_also_from_the_old_hex_form(self) -> None:
        kind = TextUUID()
        for stored in (str(self.ID), self.ID.hex, self.ID):
            assert kind.process_result_value(stored, sqlite.dialect()) == self.ID
        assert kind.process_result_value(None, sqlite.dialect()) is None

    def test_a_string_that_is_no_uuid_is_refused(self) -> None:
        with pytest.raises(ValueError):
            TextUUID().process_bind_param("expense_approval-1", sqlite.dialect())


_TEXT_IDS = {"workflow_id", "run_id", "tenant_id", "assignee_id", "user_id", "substitute_id"}
"""Columns named ``*_id`` that hold Temporal's or the application's strings, not UUIDs."""


def test_column_values_translates_attribute_names() -> None:
    assert column_values(WorkflowInstanceModel, {"metadata_": {}, "run_id": "r"}) == {
        "metadata": {},
        "run_id": "r",
    }
    assert column_values(WorkflowInstanceModel, {"metadata": {}}) == {"metadata": {}}
    with pytest.raises(KeyError, match="no attribute or column 'nope'"):
        column_values(WorkflowInstanceModel, {"nope": 1})


def test_relationships_never_load_implicitly() -> None:
    lazies = {
        (mapper.class_.__name__, rel.key): rel.lazy
        for mapper in MirrorBase.registry.mappers
        for rel in mapper.relationships
    }
    assert lazies == {
        ("WorkflowDefinitionModel", "instances"): "raise_on_sql",
        ("WorkflowInstanceModel", "definition"): "joined",
        ("WorkflowInstanceModel", "step_executions"): "raise_on_sql",
        ("WorkflowInstanceModel", "human_tasks"): "raise_on_sql",
        ("StepExecutionModel", "instance"): "raise_on_sql",
        ("HumanTaskModel", "instance"): "raise_on_sql",
    }


def test_public_names() -> None:
    assert sorted(sdk.mirror.__all__) == sorted(
        [
            "GRAPH_KIND",
            "graph_bundle",
            "graph_versions",
            "instance_diagram",
            "load_graph",
            "register_graph",
            "set_graph_active",
            "workflow_known",
            "AssignmentAction",
            "AssignmentRow",
            "CommentRow",
            "DEFAULT_LIMIT",
            "DEFAULT_TOTAL_CAP",
            "DelegationModel",
            "DelegationRow",
            "DelegationStore",
            "HumanTaskModel",
            "InstanceRow",
            "JSONType",
            "MirrorBase",
            "MirrorQueries",
            "TenantQueries",
            "NAMING_CONVENTION",
            "Page",
            "StepExecutionModel",
            "StepRow",
            "TaskAssignmentModel",
            "TaskCommentModel",
            "TaskOrder",
            "TaskRow",
            "TaskVoteModel",
            "UTCDateTime",
            "UUIDAuditMixin",
            "VERSION_TABLE",
            "VoteRow",
            "VoteState",
            "WorkflowDefinitionModel",
            "WorkflowInstanceModel",
            "alembic_config",
            "async_url",
            "create_engine",
            "current_revision",
            "downgrade",
            "head_revision",
            "session_factory",
            "upgrade",
            "upsert",
            # writes, closings, audit and rebuild
            "AuditReport",
            "EventCapture",
            "Mismatch",
            "MirrorMetrics",
            "MirrorWriter",
            "audit",
            "close_instances",
            "definition_id_for",
            "rebuild",
            "rebuild_instance",
            "record_termination",
            "replay_batches",
            "termination_error",
        ]
    )
    for name in sdk.mirror.__all__:
        assert getattr(sdk.mirror, name) is not None
