"""The declarative base of the mirror: naming convention, UTC timestamps, UUID keys.

UUIDs are PostgreSQL's native ``uuid`` and, on SQLite, the canonical 36-character text
(``0a1b2c3d-...``), the form every tool prints, so ``WHERE id = '<printed id>'`` finds the row
on both databases.

Every mirror table gets the same three columns from :class:`UUIDAuditMixin` (``id``,
``created_at``, ``updated_at``), the shape ``advanced_alchemy.base.UUIDAuditBase`` gives the
seed's models, without depending on advanced-alchemy.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import CHAR, JSON, DateTime, Dialect, MetaData, Uuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = [
    "NAMING_CONVENTION",
    "JSONType",
    "TextUUID",
    "MirrorBase",
    "UTCDateTime",
    "UUIDAuditMixin",
    "column_values",
    "utcnow",
]

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Constraint and index names (the convention advanced-alchemy uses), so migrations can name them."""

JSONType = JSON().with_variant(JSONB(), "postgresql")
"""JSON everywhere, JSONB on PostgreSQL (indexable, compact)."""


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A ``DateTime(timezone=True)`` that always stores UTC and always returns aware datetimes.

    PostgreSQL keeps ``timestamptz`` natively; SQLite has no time zone support and stores the
    text of the wall-clock time, so values are normalized to UTC before binding (otherwise
    ``+02:00`` and ``+00:00`` values would sort wrongly) and tagged as UTC when read back.

    Raises:
        TypeError: A naive datetime is bound (its zone would be a guess).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise TypeError(
                f"naive datetime {value!r} given for a UTC column: pass a timezone-aware datetime"
            )
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class TextUUID(TypeDecorator[uuid.UUID]):
    """A UUID column: native ``uuid`` on PostgreSQL, ``CHAR(36)`` canonical text elsewhere.

    SQLAlchemy's own ``Uuid`` stores 32 hex digits without dashes where there is no native
    type, which the ids users copy from the command line or the logs never match. Binds
    accept a ``uuid.UUID`` or any string ``uuid.UUID`` parses; results are ``uuid.UUID``.

    Raises:
        ValueError: A bound string is not a UUID.
    """

    impl = CHAR(36)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Uuid())
        return dialect.type_descriptor(CHAR(36))

    def process_bind_param(self, value: uuid.UUID | str | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        parsed = value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
        return parsed if dialect.name == "postgresql" else str(parsed)

    def process_result_value(self, value: Any, dialect: Dialect) -> uuid.UUID | None:
        if value is None or isinstance(value, uuid.UUID):
            return value
        return uuid.UUID(str(value))

    @property
    def python_type(self) -> type[uuid.UUID]:
        return uuid.UUID


class MirrorBase(DeclarativeBase):
    """Declarative base of every mirror table; its ``metadata`` is the mirror's schema."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), uuid.UUID: TextUUID()}


class UUIDAuditMixin:
    """A UUID primary key ``id`` and UTC ``created_at`` / ``updated_at`` set on insert and update.

    ``updated_at`` is refreshed by ORM flushes; a Core ``INSERT ... ON CONFLICT DO UPDATE`` does
    not run ``onupdate`` hooks, so :func:`sdk.mirror.upsert` sets it explicitly.
    """

    id: Mapped[uuid.UUID] = mapped_column(TextUUID(), primary_key=True, default=uuid.uuid4, sort_order=-100)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, sort_order=3001)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, onupdate=utcnow, sort_order=3002
    )


def column_values(model: type[MirrorBase], values: Mapping[str, Any]) -> dict[str, Any]:
    """Translate a dict keyed by ORM attribute names (``metadata_``) to one keyed by column names.

    Keys that already are column names pass through, so callers may use either.

    Raises:
        KeyError: A key names neither an attribute nor a column of ``model``.
    """
    table = model.__table__
    mapper = model.__mapper__
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key in mapper.column_attrs:
            out[mapper.column_attrs[key].columns[0].name] = value
        elif key in table.c:
            out[key] = value
        else:
            raise KeyError(f"{model.__name__} has no attribute or column {key!r}")
    return out
