"""``quantpipe data``: loaders of real data (prices, congressional disclosures)."""

from __future__ import annotations

import importlib

import click


@click.group()
def data() -> None:
    """Load real data into PostgreSQL (idempotent; bad rows are rejected with reasons)."""


# Loaders live beside their pool's CLI; each module registers its command here.
for _module, _attr in (("cli.data_prices", "load_prices"), ("cli.data_congress", "load_congress")):
    data.add_command(getattr(importlib.import_module(_module), _attr))
