"""Alembic environment: the URL comes from quantpipe's settings (or ``-x url=...``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from shared_models.db import database_url, normalize_url
from shared_models.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    return normalize_url(config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url")
                         or database_url())


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True,
                      dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = create_engine(_url(), poolclass=pool.NullPool)
    with connectable.connect() as connection:
        # one transaction for the whole upgrade: a failed step leaves nothing half-applied
        context.configure(connection=connection, target_metadata=target_metadata, transaction_per_migration=False)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
