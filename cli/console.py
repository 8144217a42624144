"""Shared rich console and error helpers for the CLI."""

from __future__ import annotations

import click
from rich.console import Console

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def fail(message: str, code: int = 1) -> None:
    """Print a one-line error and exit non-zero (no traceback for user errors)."""
    err_console.print(f"[bold red]error:[/] {message}")
    raise SystemExit(code)


def settings_or_fail():
    from shared_models.settings import SettingsError, get_settings

    try:
        return get_settings()
    except SettingsError as exc:
        fail(str(exc), 2)


def pass_settings(fn):
    """Decorator: build the settings once and fail cleanly on a bad variable."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(settings_or_fail(), *args, **kwargs)

    return wrapper


__all__ = ["console", "err_console", "fail", "pass_settings", "settings_or_fail", "click"]
