"""Entry point: ``quantpipe``. Each command group lives in its own module."""

from __future__ import annotations

import importlib

import click

# (module, attribute) of every command registered on the top-level group
COMMANDS = [
    ("cli.runner", "up"), ("cli.runner", "worker"), ("cli.runner", "beat"), ("cli.runner", "flower"),
    ("cli.demo.command", "demo"),
    ("cli.status", "status"), ("cli.config", "config"), ("cli.services", "services"), ("cli.db", "db"),
    ("cli.data", "data"),
    ("cli.ingest", "ingest"), ("cli.license", "license_"),
    ("cli.patterns", "patterns"),
    ("cli.discovery", "scan"), ("cli.discovery", "discoveries"),
    ("cli.shadow", "shadow"),
    ("cli.api", "api"), ("cli.api", "api_key"),
    ("cli.notify", "notify"),
]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="quantpipe")
def cli() -> None:
    """quantpipe: a Celery pipeline for a quant-trading platform.

    Four worker pools (ingest, patterns, discovery, shadow) consume their own Redis
    queues and write to one PostgreSQL database. With DATABASE_URL / REDIS_URL unset,
    quantpipe starts an embedded PostgreSQL and Redis under QUANTPIPE_HOME (unless
    QUANTPIPE_EMBEDDED=false, as in containers: then it refuses to run).

    Start everything with `quantpipe up`; see `quantpipe status`.
    """


for module_name, attr in COMMANDS:
    cli.add_command(getattr(importlib.import_module(module_name), attr))


def main() -> None:
    from shared_models.settings import SettingsError

    from .console import fail

    try:
        cli(prog_name="quantpipe")
    except SettingsError as exc:  # settings first read outside a command's own check, or an emptied home secret
        fail(str(exc), 2)


if __name__ == "__main__":
    main()
