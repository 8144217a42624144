"""``quantpipe api`` (serve the HTTP API) and ``quantpipe api-key create | list | revoke``."""

from __future__ import annotations

import getpass
import os
import shutil

import click

from .console import console, fail, pass_settings

BOOTSTRAP_NAME = "bootstrap-admin"
KEY_FILE = "api_key"


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return "cli"


@click.command("api")
@click.option("--host", default=None, help="Address to bind (default QUANTPIPE_API_HOST, 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port (default QUANTPIPE_API_PORT, 8000).")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="uvicorn worker processes (default QUANTPIPE_API_WORKERS, 1).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False))
@pass_settings
def api(settings, host: str | None, port: int | None, workers: int | None, log_level: str) -> None:
    """Serve the HTTP API (FastAPI on uvicorn): discovery, shadow, activity, patterns, /health, /metrics, /docs.

    Stateless: run as many as you like behind a load balancer. Keys: `quantpipe api-key create`.
    """
    import uvicorn

    from shared_models.db import service_urls

    db_url, redis_url = service_urls()
    os.environ.update(DATABASE_URL=db_url, REDIS_URL=redis_url)  # worker processes attach to the same servers
    host, port = host or settings.api.host, settings.api.port if port is None else port
    n = workers or settings.api.workers
    if n > 1:
        prom = settings.home.resolve() / f"prometheus-api-{os.getpid()}"
        shutil.rmtree(prom, ignore_errors=True)
        prom.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(prom)
    console.print(f"quantpipe API on http://{host}:{port}  (docs /docs, health /health, {n} worker(s))")
    try:
        uvicorn.run("api.app:create_app", factory=True, host=host, port=port, workers=n, log_level=log_level.lower(),
                    access_log=log_level.lower() in ("debug", "info"),  # its arguments cost even when not shown
                    proxy_headers=False, server_header=False, timeout_graceful_shutdown=10)
    finally:
        if n > 1:
            shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


@click.group("api-key")
def api_key() -> None:
    """Create, list and revoke API keys (scopes: read, track, admin; admin holds all)."""


@api_key.command("create")
@click.option("--scope", "scopes", multiple=True, required=True,
              type=click.Choice(["read", "track", "admin"], case_sensitive=False),
              help="Scope of the key (repeatable).")
@click.option("--name", required=True, help="Who or what uses the key, e.g. main-app.")
@pass_settings
def create(settings, scopes: tuple[str, ...], name: str) -> None:
    """Create a key. The key is printed once, on the last line; only its hash is stored."""
    from api.keys import ApiKeyError, create_key
    from shared_models.db import unit_of_work

    try:
        with unit_of_work() as session:
            row, plaintext = create_key(session, name, scopes, created_by=_actor())
            key_id, got = row.key_id, ", ".join(row.scopes)
    except ApiKeyError as exc:
        fail(str(exc))
    console.print(f"created API key [bold]{key_id}[/] ({name}; scopes {got}). Store it now, it is not shown again:")
    click.echo(plaintext)


@api_key.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include revoked keys.")
@pass_settings
def list_(settings, show_all: bool) -> None:
    """Keys with their scopes and last use (never the key itself)."""
    from rich.table import Table

    from api.keys import list_keys
    from shared_models.db import unit_of_work

    with unit_of_work() as session:
        rows = list_keys(session, include_revoked=show_all)
    table = Table(title="API keys")
    for col in ("key id", "name", "scopes", "created", "last used", "revoked"):
        table.add_column(col)
    fmt = lambda t: t.strftime("%Y-%m-%d %H:%M") if t else "—"  # noqa: E731
    for r in rows:
        table.add_row(r.key_id, r.name, ",".join(r.scopes), fmt(r.created_at), fmt(r.last_used_at), fmt(r.revoked_at))
    console.print(table if rows else "no API keys yet: quantpipe api-key create --scope read --name NAME")


@api_key.command("revoke")
@click.argument("key_id")
@pass_settings
def revoke(settings, key_id: str) -> None:
    """Revoke KEY_ID (the public id from `list`, or the whole key).

    It stops working in every API process within QUANTPIPE_API_KEY_CACHE_SECONDS (5 s).
    """
    from api.keys import revoke_key
    from shared_models.db import unit_of_work

    try:
        with unit_of_work() as session:
            row = revoke_key(session, key_id)
            kid, name = row.key_id, row.name
    except LookupError as exc:
        fail(str(exc))
    ttl = settings.api.key_cache_seconds
    console.print(f"revoked API key [bold]{kid}[/] ({name}); refused by every API process within {ttl:g} s")


def bootstrap_key(settings, database_url: str) -> tuple[str, bool]:
    """(path, created) of the first admin key under QUANTPIPE_HOME (mode 0600), like Flower's password.

    Reused while it still verifies; replaced when revoked or when the database is new.
    """
    from api.keys import create_key, verify
    from shared_models.db import unit_of_work

    path = settings.home.resolve() / KEY_FILE
    if path.exists():
        with unit_of_work(database_url) as session:
            if verify(session, path.read_text().strip()) is not None:
                return str(path), False
    with unit_of_work(database_url) as session:
        _, plaintext = create_key(session, BOOTSTRAP_NAME, ["admin"], created_by="quantpipe up")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(plaintext + "\n")
    os.replace(tmp, path)
    return str(path), True
