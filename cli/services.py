"""``quantpipe services``: the embedded PostgreSQL and Redis."""

from __future__ import annotations

import click

from .console import console, pass_settings


@click.group()
def services() -> None:
    """Start, stop or show the embedded servers (used when DATABASE_URL/REDIS_URL are unset)."""


@services.command()
@pass_settings
def start(settings) -> None:
    """Start the embedded servers (no-op for those already running)."""
    from shared_models import embedded

    state = embedded.ensure_services(settings.home, postgres=settings.database_url is None,
                                     redis=settings.redis_url is None)
    console.print(f"postgres: {state.database_url} (pid {state.postgres_pid})")
    console.print(f"redis:    {state.redis_url} (pid {state.redis_pid})")


@services.command()
@pass_settings
def stop(settings) -> None:
    """Stop the embedded servers; their data stays under QUANTPIPE_HOME."""
    from shared_models import embedded

    state = embedded.stop_services(settings.home)
    stopped = [n for n, pid in (("postgres", state.postgres_pid), ("redis", state.redis_pid)) if pid]
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@services.command(name="status")
@pass_settings
def status_(settings) -> None:
    """Show the embedded servers' URLs and whether they run."""
    from shared_models import embedded

    state = embedded.read_state(settings.home.resolve())
    for name, url, pid in (("postgres", state.database_url, state.postgres_pid),
                           ("redis", state.redis_url, state.redis_pid)):
        alive = "[green]running[/]" if embedded._alive(pid) else "[red]stopped[/]"
        console.print(f"{name:9} {alive}  {url or '-'}  pid {pid or '-'}")
