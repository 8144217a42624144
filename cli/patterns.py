"""`quantpipe patterns`: detection, replay, monitoring."""

from __future__ import annotations

import click


@click.group()
def patterns() -> None:
    """Patterns pool: scan, replay, test events, monitor."""
