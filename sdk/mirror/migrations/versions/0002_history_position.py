"""Order row versions by their position in Temporal's history.

Adds ``history_position`` and ``history_clock`` to instances and human tasks: the history
length and the workflow time of the workflow task whose events last changed the row. A
workflow task that Temporal never recorded (lost with its worker, or with the server's
unpersisted state) and its retry emit the same events with the same sequence numbers, but the
retry runs at a longer history or, when the server lost the events before it too, later;
comparing (position, clock, sequence) lets the recorded work supersede the lost one.

Revision ID: 0002_history_position
Revises: 0001
Create Date: 2026-11-29 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_history_position"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("workflow_instances", "workflow_human_tasks")


def upgrade() -> None:
    for table in _TABLES:
        for column in ("history_position", "history_clock"):
            op.add_column(
                table, sa.Column(column, sa.BigInteger(), server_default=sa.text("0"), nullable=False)
            )


def downgrade() -> None:
    for table in _TABLES:
        for column in ("history_clock", "history_position"):
            op.drop_column(table, column)
