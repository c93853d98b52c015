"""The packaged migrations, without a database: revisions, and the SQL they would run."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory

import sdk.mirror
from sdk.mirror import VERSION_TABLE, MirrorBase, alembic_config, head_revision
from sdk.mirror._base import TextUUID

MIGRATIONS = Path(sdk.mirror.__file__).parent / "migrations"


def test_one_linear_history_ending_at_head() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    revisions = list(script.walk_revisions())
    assert [r.revision for r in revisions] == [
        "0008q_pending_task_indexes",
        "0006v_approval_policies",
        "0003_sqlite_uuid_text",
        "0002_history_position",
        "0001",
    ]
    assert head_revision() == "0008q_pending_task_indexes"
    assert [r.down_revision for r in revisions] == [
        "0006v_approval_policies",
        "0003_sqlite_uuid_text",
        "0002_history_position",
        "0001",
        None,
    ]


def test_the_scripts_are_inside_the_package() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert Path(script.dir).resolve() == MIGRATIONS.resolve()
    assert (MIGRATIONS / "env.py").is_file() and (MIGRATIONS / "script.py.mako").is_file()


def test_revisions_are_frozen_and_do_not_import_the_models() -> None:
    for path in (MIGRATIONS / "versions").glob("[0-9]*.py"):
        text = path.read_text()
        assert "import sdk" not in text and "from sdk" not in text, path.name


@pytest.mark.parametrize(
    ("url", "json_type"),
    [("postgresql+asyncpg://u@db/x", "JSONB"), ("sqlite+aiosqlite:///x.db", "JSON")],
)
def test_offline_sql_creates_every_table(url: str, json_type: str) -> None:
    config = alembic_config(url)
    config.output_buffer = io.StringIO()
    command.upgrade(config, "head", sql=True)
    sql = config.output_buffer.getvalue()
    for table in MirrorBase.metadata.tables:
        assert f"CREATE TABLE {table} (" in sql
    assert f"CREATE TABLE {VERSION_TABLE}" in sql
    assert f"context_data {json_type} NOT NULL" in sql
    assert "CREATE UNIQUE INDEX ix_workflow_definitions_name_version" in sql


LATER_TABLES = {"workflow_task_votes", "workflow_delegations"}
"""Tables created after 0003 (with 36-character UUID text on SQLite from the start)."""


def test_the_uuid_text_revision_rewrites_every_uuid_column_of_its_time() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    module = script.get_revision("0003_sqlite_uuid_text").module
    uuid_columns = {
        (table.name, column.name)
        for table in MirrorBase.metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, TextUUID) and table.name not in LATER_TABLES
    }
    assert {(t, c) for t, columns in module.UUID_COLUMNS.items() for c in columns} == uuid_columns
