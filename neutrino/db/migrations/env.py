"""Alembic environment: runs migrations on the connection neutrino hands it."""

from __future__ import annotations

from alembic import context

from neutrino.db.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Run migrations through neutrino-db-manage, which supplies a connection")

context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
