"""`quantpipe scan` and `quantpipe discoveries` (discovery pool)."""

from __future__ import annotations

import click


@click.group()
def scan() -> None:
    """Run discovery scans of politicians' trades."""


@click.group()
def discoveries() -> None:
    """Read discovery findings."""
