"""`quantpipe ingest`: behavioural-intelligence operations."""

from __future__ import annotations

import click


@click.group()
def ingest() -> None:
    """Ingest pool: simulate load, show stats."""
