"""Alembic environment: migrations run on the connection `store.db.migrate` hands over."""

from alembic import context
from sqlmodel import SQLModel

import store.crm_tables  # noqa: F401  (registers the webhook outbox on SQLModel.metadata)
import store.loyalty_tables  # noqa: F401  (registers the loyalty tables and the actions outbox on SQLModel.metadata)
import store.tables  # noqa: F401  (registers the tables on SQLModel.metadata)

target_metadata = SQLModel.metadata


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through store.db.migrate(engine)")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
