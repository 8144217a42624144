"""`quantpipe shadow checkpoint export|import`: the whole registry as one JSON file, written atomically."""

from __future__ import annotations

from pathlib import Path

import click

from cli.console import console, pass_settings


@click.group()
def checkpoint() -> None:
    """Export or import the whole registry as a JSON checkpoint."""
@checkpoint.command("export")
@click.option("--path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Checkpoint file (default SHADOW_CHECKPOINT_PATH, data/shadow_models_checkpoint.json).")
@pass_settings
def checkpoint_export(settings, path: Path | None) -> None:
    """Write the checkpoint atomically; the previous good one is kept as <path>.backup."""
    from shared_models.db import unit_of_work
    from workers.shadow import checkpoint as cp

    path = path or settings.shadow.checkpoint_path
    with console.status(f"exporting to {path}"), unit_of_work() as session:
        doc = cp.export(session, path)
    counts = ", ".join(f"{v} {k}" for k, v in doc["counts"].items())
    console.print(f"[green]checkpoint written[/] {path} ({counts}; sha256 {doc['sha256'][:12]}…)")


@checkpoint.command("import")
@click.option("--path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Checkpoint file (default SHADOW_CHECKPOINT_PATH).")
@click.option("--yes", is_flag=True, help="Do not ask before replacing the current registry.")
@pass_settings
def checkpoint_import(settings, path: Path | None, yes: bool) -> None:
    """Replace the registry (models, trades, evaluations, history) with the checkpoint's content."""
    from cli.shadow import user_errors
    from shared_models.db import unit_of_work
    from workers.shadow import checkpoint as cp

    path = path or settings.shadow.checkpoint_path
    with user_errors():
        doc = cp.load(path)
        if not yes:
            click.confirm(f"replace the shadow registry with {path} ({doc['exported_at']})?", abort=True)
        with console.status(f"importing {path}"), unit_of_work() as session:
            cp.restore(session, path)
    counts = ", ".join(f"{v} {k}" for k, v in doc["counts"].items())
    console.print(f"[green]registry restored[/] from {path} ({counts})")
