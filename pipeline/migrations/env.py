"""Alembic environment: Netra passes an open connection in `config.attributes`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from pipeline.schema import metadata

connection = context.config.attributes.get("connection")


def _run(conn: object) -> None:
    context.configure(
        connection=conn,
        target_metadata=metadata,
        render_as_batch=True,  # SQLite needs batch mode to alter tables
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    _run(connection)
else:
    url = context.config.get_main_option("sqlalchemy.url") or "sqlite:///data/netra.db"
    with create_engine(url).connect() as conn:
        _run(conn)
