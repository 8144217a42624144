"""``quantpipe config``: every setting, its value and its default (secrets masked)."""

from __future__ import annotations

import os

import click
from rich.table import Table

from .console import console, pass_settings


def markdown_table() -> str:
    """The README's configuration table (a test keeps the README in sync with this)."""
    from shared_models.settings import declared_variables

    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, default, help_, _secret in declared_variables():
        shown = "unset" if default is None else f"`{default}`"
        rows.append(f"| `{name}` | {shown} | {help_.replace('|', '&#124;')} |")
    return "\n".join(rows)


@click.command()
@click.option("--markdown", is_flag=True, help="Print the defaults as the README's Markdown table.")
@pass_settings
def config(settings, markdown) -> None:
    """List every environment variable quantpipe reads, with the value in force."""
    from shared_models.settings import declared_variables

    if markdown:
        click.echo(markdown_table())
        return
    table = Table(title="settings (environment variables)")
    for col in ("variable", "value", "default", "meaning"):
        table.add_column(col, overflow="fold")
    for name, default, help_, secret in declared_variables():
        raw = os.environ.get(name)
        shown = ("***" if secret else raw) if raw is not None else "[dim](default)[/]"
        table.add_row(name, shown, "***" if secret and default else str(default), help_)
    console.print(table)
