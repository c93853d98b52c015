"""Alembic revisions of the mirror schema (run them with :func:`sdk.mirror.upgrade`)."""
