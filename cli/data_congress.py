"""`quantpipe data load-congress` (discovery pool)."""

from __future__ import annotations

import click


@click.command(name='load-congress')
def load_congress() -> None:
    """Load congressional trade disclosures (not implemented yet)."""
