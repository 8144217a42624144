"""`quantpipe license`: signed licence keys."""

from __future__ import annotations

import click


@click.group(name='license')
def license_() -> None:
    """Issue and check signed licence keys."""
