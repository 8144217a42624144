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


@db.command()
@pass_settings
def logins(settings) -> None:
    """Give each pool's role LOGIN and the password in its <POOL>_DATABASE_URL.

    Run as the owner after `db upgrade` (docker-compose's migrate service does):
    INGEST_, PATTERNS_, DISCOVERY_, SHADOW_DATABASE_URL, QUANTPIPE_NOTIFY_ and
    QUANTPIPE_API_DATABASE_URL; a URL's user must be its role (quantpipe_<pool>).
    """
    from shared_models.db import database_url
    from shared_models.roles import set_logins

    done = set_logins(database_url(), settings)
    console.print(f"LOGIN set for: {', '.join(done) or 'none (no <POOL>_DATABASE_URL set)'}")

