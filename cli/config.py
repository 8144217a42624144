"""``quantpipe config``: every setting, its value and its default (secrets masked)."""

from __future__ import annotations

import os

import click
from rich.table import Table

from .console import console, pass_settings


@click.command()
@pass_settings
def config(settings) -> None:
    """List every environment variable quantpipe reads, with the value in force."""
    from shared_models.settings import declared_variables

    table = Table(title="settings (environment variables)")
    for col in ("variable", "value", "default", "meaning"):
        table.add_column(col, overflow="fold")
    for name, default, help_, secret in declared_variables():
        raw = os.environ.get(name)
        shown = ("***" if secret else raw) if raw is not None else "[dim](default)[/]"
        table.add_row(name, shown, "***" if secret and default else str(default), help_)
    console.print(table)
