"""Alembic environment: always run programmatically (``storage.migrate``), on the
connection it is handed, so there is no alembic.ini and no URL to configure twice."""

from __future__ import annotations

from alembic import context

from llm_backend.storage.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things; batch mode copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
