"""`quantpipe shadow`: champion/challenger administration."""

from __future__ import annotations

import click


@click.group()
def shadow() -> None:
    """Shadow pool: deploy, compare, promote, roll back."""
