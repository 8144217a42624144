"""`quantpipe data load-prices` (patterns pool)."""

from __future__ import annotations

import click


@click.command(name='load-prices')
def load_prices() -> None:
    """Load daily/intraday bars and the GSPC benchmark (not implemented yet)."""
