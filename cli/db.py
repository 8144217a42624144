"""``quantpipe db``: schema migrations (Alembic is the only way the schema changes)."""

from __future__ import annotations

import click

from .console import console, pass_settings


@click.group()
def db() -> None:
    """Migrate the database schema."""


@db.command()
@click.argument("revision", default="head")
@pass_settings
def upgrade(settings, revision) -> None:
    """Upgrade to REVISION (default: head)."""
    from shared_models import migrate

    migrate.upgrade(revision=revision)
    console.print(f"schema at {migrate.current_revision()}")


@db.command()
@click.argument("revision")
@pass_settings
def downgrade(settings, revision) -> None:
    """Downgrade to REVISION (e.g. -1, or base to drop every table)."""
    from shared_models import migrate

    migrate.downgrade(revision=revision)
    console.print(f"schema at {migrate.current_revision() or 'base'}")


@db.command()
@pass_settings
def current(settings) -> None:
    """Show the current and head revisions."""
    from shared_models import migrate

    console.print(f"current {migrate.current_revision() or 'base'}  head {migrate.head_revision()}")
