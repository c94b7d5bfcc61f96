"""Alembic environment: runs on the connection handed over by ``Database.migrate``."""

from alembic import context

from voipbin.store.tables import Base

target_metadata = Base.metadata
connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through voipbin.store.db.Database.migrate")
context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
