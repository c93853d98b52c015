"""Migrations and writes against real databases, on SQLite and on PostgreSQL.

The migrations must produce exactly the models' metadata (so the ORM, the query API and the
writer agree with the database), run idempotently and concurrently, and the upsert helper must
converge however often a write is replayed.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from sdk._types import StepStatus, StepType, WorkflowStatus
from sdk.mirror import (
    VERSION_TABLE,
    HumanTaskModel,
    MirrorBase,
    StepExecutionModel,
    TaskAssignmentModel,
    TaskCommentModel,
    WorkflowDefinitionModel,
    WorkflowInstanceModel,
    create_engine,
    current_revision,
    downgrade,
    head_revision,
    session_factory,
    upgrade,
    upsert,
)

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)


async def _inspect(url: str, fn: Any) -> Any:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(fn)
    finally:
        await engine.dispose()


def _schema(connection: sa.Connection) -> dict[str, Any]:
    inspector = sa.inspect(connection)
    schema: dict[str, Any] = {}
    for table in inspector.get_table_names():
        schema[table] = {
            "columns": {c["name"]: c["nullable"] for c in inspector.get_columns(table)},
            "pk": (
                inspector.get_pk_constraint(table)["name"],
                inspector.get_pk_constraint(table)["constrained_columns"],
            ),
            "fks": sorted(
                (
                    fk["name"],
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    fk["options"].get("ondelete"),
                )
                for fk in inspector.get_foreign_keys(table)
            ),
            "indexes": sorted(
                (ix["name"], tuple(ix["column_names"]), bool(ix["unique"]))
                for ix in inspector.get_indexes(table)
                # PostgreSQL also lists the index behind each unique constraint.
                if not ix.get("duplicates_constraint")
            ),
            "uniques": sorted(
                (u["name"], tuple(u["column_names"])) for u in inspector.get_unique_constraints(table)
            ),
        }
    return schema


def _metadata_schema() -> dict[str, Any]:
    schema: dict[str, Any] = {}
    for table in MirrorBase.metadata.tables.values():
        schema[table.name] = {
            "columns": {c.name: c.nullable for c in table.columns},
            "pk": (table.primary_key.name, [c.name for c in table.primary_key.columns]),
            "fks": sorted(
                (fk.name, tuple(fk.column_keys), fk.referred_table.name, fk.ondelete)
                for fk in table.foreign_key_constraints
            ),
            "indexes": sorted(
                (ix.name, tuple(c.name for c in ix.columns), bool(ix.unique)) for ix in table.indexes
            ),
            "uniques": sorted(
                (c.name, tuple(col.name for col in c.columns))
                for c in table.constraints
                if isinstance(c, sa.UniqueConstraint)
            ),
        }
    return schema


async def test_upgrade_from_empty_produces_exactly_the_model_metadata(empty_database_url: str) -> None:
    assert await current_revision(empty_database_url) is None
    await upgrade(empty_database_url)
    assert await current_revision(empty_database_url) == head_revision()

    reflected = await _inspect(empty_database_url, _schema)
    assert reflected.pop(VERSION_TABLE)["columns"] == {"version_num": False}
    assert reflected == _metadata_schema()

    def diff(connection: sa.Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "version_table": VERSION_TABLE}
        )
        return list(compare_metadata(context, MirrorBase.metadata))

    assert await _inspect(empty_database_url, diff) == []


async def test_the_pending_task_indexes_are_partial(backend: str, empty_database_url: str) -> None:
    """The inbox's indexes hold pending tasks only (the schema comparison sees no predicates)."""
    await upgrade(empty_database_url)

    def definitions(connection: sa.Connection) -> dict[str, str]:
        if backend == "postgresql":
            sql = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'workflow_human_tasks'"
        else:
            sql = (
                "SELECT name, sql FROM sqlite_master "
                "WHERE type = 'index' AND tbl_name = 'workflow_human_tasks'"
            )
        return {name: definition or "" for name, definition in connection.execute(sa.text(sql))}

    found = await _inspect(empty_database_url, definitions)
    for name, columns in (
        ("ix_human_tasks_pending_tenant_assignee_due", "tenant_id, assignee_id, due_at, created_at, id"),
        ("ix_human_tasks_pending_tenant_group_due", "tenant_id, assignee_group, due_at, created_at, id"),
    ):
        definition = found[name].replace('"', "")
        assert f"({columns})" in definition, definition
        assert "pending" in definition.split(" WHERE ")[1], definition
    assert " WHERE " not in found["ix_human_tasks_tenant_id_status_due_at"]


async def test_json_columns_are_jsonb_on_postgresql(backend: str, empty_database_url: str) -> None:
    await upgrade(empty_database_url)

    def json_types(connection: sa.Connection) -> dict[tuple[str, str], sa.types.TypeEngine[Any]]:
        inspector = sa.inspect(connection)
        return {
            (table.name, column.name): next(
                c["type"] for c in inspector.get_columns(table.name) if c["name"] == column.name
            )
            for table in MirrorBase.metadata.tables.values()
            for column in table.columns
            if isinstance(column.type, sa.JSON)
        }

    types = await _inspect(empty_database_url, json_types)
    assert len(types) == 11  # 7, and the approval policies: voters, exclusions, substitutes, votes
    for key, reflected in types.items():
        if backend == "postgresql":
            assert isinstance(reflected, JSONB), key
        else:
            assert isinstance(reflected, sa.JSON) and not isinstance(reflected, JSONB), key


async def test_upgrade_is_idempotent_and_downgrade_reverses_it(empty_database_url: str) -> None:
    await upgrade(empty_database_url)
    await upgrade(empty_database_url)
    await upgrade(empty_database_url, head_revision())
    assert await current_revision(empty_database_url) == head_revision()
    await downgrade(empty_database_url, "0001")
    assert await current_revision(empty_database_url) == "0001"
    columns = await _inspect(
        empty_database_url, lambda c: {col["name"] for col in sa.inspect(c).get_columns("workflow_instances")}
    )
    assert not {"history_position", "history_clock"} & columns and "last_event_seq" in columns

    await downgrade(empty_database_url, "base")
    assert await current_revision(empty_database_url) is None
    tables = await _inspect(empty_database_url, lambda c: set(sa.inspect(c).get_table_names()))
    assert tables <= {VERSION_TABLE}

    await upgrade(empty_database_url)
    tables = await _inspect(empty_database_url, lambda c: set(sa.inspect(c).get_table_names()))
    assert tables == {*MirrorBase.metadata.tables, VERSION_TABLE}


async def test_concurrent_upgrades_run_one_after_the_other(empty_database_url: str) -> None:
    await asyncio.gather(*(upgrade(empty_database_url) for _ in range(3)))
    assert await current_revision(empty_database_url) == head_revision()


# -- writes ------------------------------------------------------------------------------------


async def _definition(session: AsyncSession, name: str) -> uuid.UUID:
    definition_id = uuid.uuid4()
    await upsert(session, WorkflowDefinitionModel, {"id": definition_id, "name": name, "version": "1.0.0"})
    return definition_id


def _instance_values(definition_id: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    instance_id = uuid.uuid4()
    values: dict[str, Any] = {
        "id": instance_id,
        "definition_id": definition_id,
        "workflow_name": "expense",
        "workflow_version": "1.0.0",
        "status": WorkflowStatus.RUNNING,
        "started_at": T0,
        "workflow_id": f"expense-{instance_id}",
        "run_id": str(instance_id),
        "metadata_": {"source": "test"},
    }
    values.update(overrides)
    return values


async def test_definition_defaults(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        definition_id = await _definition(session, f"defaults-{uuid.uuid4().hex[:6]}")
        await session.commit()
    async with sessions() as session:
        row = await session.get_one(WorkflowDefinitionModel, definition_id)
    assert row.workflow_type == f"{row.name}@1.0.0"
    assert row.is_active is True and row.definition_json == {}
    assert row.created_at.tzinfo is UTC and row.updated_at >= row.created_at


async def test_upsert_is_idempotent(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        definition_id = await _definition(session, "idempotent")
        values = _instance_values(definition_id, context_data={"amount": 12.5, "tags": ["a"]})
        assert await upsert(session, WorkflowInstanceModel, values) == 1
        await session.commit()
    async with sessions() as session:
        first = await session.get_one(WorkflowInstanceModel, values["id"])
    for _ in range(2):
        async with sessions() as session:
            assert await upsert(session, WorkflowInstanceModel, values) == 1
            await session.commit()
    async with sessions() as session:
        again = await session.get_one(WorkflowInstanceModel, values["id"])
        count = await session.scalar(
            sa.select(sa.func.count()).where(WorkflowInstanceModel.run_id == values["run_id"])
        )
    assert count == 1
    for column in ("status", "context_data", "metadata_", "started_at", "workflow_id", "created_at"):
        assert getattr(again, column) == getattr(first, column), column
    assert again.updated_at >= first.updated_at
    assert again.metadata_ == {"source": "test"} and again.context_data == {"amount": 12.5, "tags": ["a"]}


async def test_upsert_updates_only_the_named_columns(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        definition_id = await _definition(session, "partial")
        values = _instance_values(definition_id, current_step="validate")
        await upsert(session, WorkflowInstanceModel, values)
        changed = {**values, "status": WorkflowStatus.COMPLETED, "current_step": None}
        await upsert(session, WorkflowInstanceModel, changed, ["id"], ["status"])
        await session.commit()
    async with sessions() as session:
        row = await session.get_one(WorkflowInstanceModel, values["id"])
    assert (row.status, row.current_step) == (WorkflowStatus.COMPLETED, "validate")


async def test_upsert_by_a_unique_column_and_do_nothing(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        definition_id = await _definition(session, "by-run-id")
        values = _instance_values(definition_id)
        await upsert(session, WorkflowInstanceModel, values)
        # Another id, same run id: the conflict is on run_id, the existing row is updated.
        again = {**values, "id": uuid.uuid4(), "status": WorkflowStatus.WAITING}
        assert await upsert(session, WorkflowInstanceModel, again, ["run_id"]) == 1
        ignored = {**values, "status": WorkflowStatus.FAILED}
        assert await upsert(session, WorkflowInstanceModel, ignored, ["id"], []) == 0
        await session.commit()
    async with sessions() as session:
        rows = (
            await session.scalars(
                sa.select(WorkflowInstanceModel).where(WorkflowInstanceModel.run_id == values["run_id"])
            )
        ).all()
    assert [(r.id, r.status) for r in rows] == [(values["id"], WorkflowStatus.WAITING)]


async def test_upsert_where_keeps_the_newest_event(sessions: async_sessionmaker[AsyncSession]) -> None:
    def newer(new: Any) -> Any:
        return WorkflowInstanceModel.last_event_seq < new.last_event_seq

    async with sessions() as session:
        definition_id = await _definition(session, "ordered")
        values = _instance_values(definition_id, last_event_seq=5, status=WorkflowStatus.WAITING)
        await upsert(session, WorkflowInstanceModel, values)
        stale = {**values, "last_event_seq": 4, "status": WorkflowStatus.RUNNING}
        assert await upsert(session, WorkflowInstanceModel, stale, where=newer) == 0
        fresh = {**values, "last_event_seq": 6, "status": WorkflowStatus.COMPLETED}
        assert await upsert(session, WorkflowInstanceModel, fresh, where=newer) == 1
        await session.commit()
    async with sessions() as session:
        row = await session.get_one(WorkflowInstanceModel, values["id"])
    assert (row.last_event_seq, row.status) == (6, WorkflowStatus.COMPLETED)


async def test_upsert_many_rows_at_once(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        definition_id = await _definition(session, "many")
        rows = [_instance_values(definition_id, current_step=f"s{i}") for i in range(3)]
        assert await upsert(session, WorkflowInstanceModel, rows) == 3
        assert await upsert(session, WorkflowInstanceModel, rows) == 3
        with pytest.raises(ValueError, match="same keys"):
            await upsert(session, WorkflowInstanceModel, [rows[0], {"id": uuid.uuid4()}])
        with pytest.raises(KeyError):
            await upsert(session, WorkflowInstanceModel, {"id": uuid.uuid4(), "nope": 1})
        assert await upsert(session, WorkflowInstanceModel, []) == 0
        await session.commit()
    async with sessions() as session:
        ids = set(
            await session.scalars(
                sa.select(WorkflowInstanceModel.id).where(
                    WorkflowInstanceModel.definition_id == definition_id
                )
            )
        )
    assert ids == {r["id"] for r in rows}


async def test_upsert_splits_batches_beyond_the_parameter_limit(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # 2,000 rows x 19 bound columns = 38,000 parameters: more than asyncpg or SQLite take at once.
    async with sessions() as session:
        definition_id = await _definition(session, "bulk")
        rows = [_instance_values(definition_id, last_event_seq=i) for i in range(2000)]
        assert await upsert(session, WorkflowInstanceModel, rows) == 2000
        await session.commit()
    async with sessions() as session:
        total = await session.scalar(
            sa.select(sa.func.sum(WorkflowInstanceModel.last_event_seq)).where(
                WorkflowInstanceModel.definition_id == definition_id
            )
        )
    assert total == sum(range(2000))


async def test_datetimes_are_stored_in_utc_and_compare_across_offsets(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    tokyo = timezone(timedelta(hours=9))
    async with sessions() as session:
        definition_id = await _definition(session, "zones")
        # 10:00 in Tokyo is 01:00 UTC: earlier than 09:00 UTC although its wall clock is later.
        early = _instance_values(definition_id, started_at=datetime(2025, 1, 6, 10, 0, tzinfo=tokyo))
        late = _instance_values(definition_id, started_at=T0)
        await upsert(session, WorkflowInstanceModel, [early, late])
        await session.commit()
    async with sessions() as session:
        ordered = (
            await session.scalars(
                sa.select(WorkflowInstanceModel)
                .where(WorkflowInstanceModel.definition_id == definition_id)
                .order_by(WorkflowInstanceModel.started_at)
            )
        ).all()
        before = await session.scalar(
            sa.select(sa.func.count()).where(
                WorkflowInstanceModel.definition_id == definition_id,
                WorkflowInstanceModel.started_at < datetime(2025, 1, 6, 11, 0, tzinfo=tokyo),
            )
        )
    assert [r.id for r in ordered] == [early["id"], late["id"]]
    assert ordered[0].started_at == datetime(2025, 1, 6, 1, 0, tzinfo=UTC)
    assert ordered[0].started_at.tzinfo is UTC
    assert before == 1


async def test_deleting_an_instance_cascades(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        definition_id = await _definition(session, "cascade")
        instance = _instance_values(definition_id)
        step_id, task_id = uuid.uuid4(), uuid.uuid4()
        session.add(WorkflowInstanceModel(**instance))
        await session.flush()
        session.add(
            StepExecutionModel(
                id=step_id,
                instance_id=instance["id"],
                step_name="approve",
                step_type=StepType.HUMAN,
                status=StepStatus.WAITING,
                started_at=T0,
            )
        )
        await session.flush()
        session.add(
            HumanTaskModel(
                id=task_id,
                instance_id=instance["id"],
                step_execution_id=step_id,
                step_name="approve",
                title="Approve",
                workflow_id=instance["workflow_id"],
            )
        )
        await session.flush()
        session.add(
            TaskCommentModel(
                task_id=task_id, instance_id=instance["id"], author="ann", body="hi", posted_at=T0
            )
        )
        session.add(TaskAssignmentModel(task_id=task_id, action="claim", to_assignee="ann", at=T0))
        await session.commit()

    async with sessions() as session:
        await session.execute(
            sa.delete(WorkflowInstanceModel).where(WorkflowInstanceModel.id == instance["id"])
        )
        await session.commit()
    async with sessions() as session:
        for model, column in (
            (StepExecutionModel, StepExecutionModel.instance_id),
            (HumanTaskModel, HumanTaskModel.instance_id),
            (TaskCommentModel, TaskCommentModel.instance_id),
        ):
            assert await session.scalar(sa.select(sa.func.count()).where(column == instance["id"])) == 0, (
                model
            )
        assert (
            await session.scalar(sa.select(sa.func.count()).where(TaskAssignmentModel.task_id == task_id))
            == 0
        )


async def test_foreign_keys_are_enforced(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        with pytest.raises(sa.exc.IntegrityError):
            await upsert(session, WorkflowInstanceModel, _instance_values(uuid.uuid4()))
        await session.rollback()


async def test_engine_from_url_without_driver(migrated_database_url: str) -> None:
    bare = migrated_database_url.replace("+aiosqlite", "").replace("+asyncpg", "")
    engine: AsyncEngine = create_engine(bare)
    try:
        async with session_factory(engine)() as session:
            assert await session.scalar(sa.select(sa.func.count()).select_from(WorkflowDefinitionModel)) >= 0
    finally:
        await engine.dispose()
