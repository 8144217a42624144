"""`quantpipe ingest simulate-logins`: login trust on a simulated population with habits."""

from __future__ import annotations

import warnings

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .console import console, fail, pass_settings


@click.command("simulate-logins")
@click.option("--users", default=150, show_default=True, type=click.IntRange(10, 100_000), help="Simulated people.")
@click.option("--days", default=21, show_default=True, type=click.IntRange(3, 365), help="Days of login history.")
@click.option("--seed", default=7, show_default=True, type=int, help="Random seed (reproducible population).")
@click.option("--license-key", envvar="INGEST_LICENSE_KEY", default=None, help="Licence key (default: dev mode).")
@click.option("--keep", is_flag=True, help="Keep the simulated users (default: erase them afterwards).")
@pass_settings
def simulate_logins(settings, users: int, days: int, seed: int, license_key: str | None, keep: bool) -> None:
    """Log a simulated population in through verify_login/confirm_login: weeks of history on their
    habits, then everyday logins (routine, odd hour, typo, phone, new device, travel) and attacks
    (takeover with the victim's browser and hour, stolen device cookie, brute force, credential
    stuffing). Prints ROC/AUC, challenged rates per scenario and the two targets; exits 1 if a
    target is missed."""
    from shadowwatch import ShadowWatchSync
    from workers.ingestion.login_sim import Simulation

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dev-mode warning: the simulation tracks no events
        try:
            sw = ShadowWatchSync(license_key=license_key)
        except Exception as exc:  # noqa: BLE001 - reported to the operator
            fail(f"cannot start ShadowWatch: {exc}")
        sim = Simulation(sw, users=users, days=days, seed=seed)
        with Progress(TextColumn("[bold]logins"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console) as progress:
            task = progress.add_task("logins", total=sim.total_logins)
            sim.progress = lambda n: progress.advance(task, n)
            report = sim.run_all()
            progress.update(task, total=progress.tasks[0].completed)
        if not keep:  # erase the simulated people; one AOF rewrite at the end covers them all
            from workers.ingestion import erasure

            rewrite = sw.settings.ingest.erasure_aof_rewrite
            for i, p in enumerate(sim.people):
                erasure.delete_user(sw.engine, sw.cache, sw.redis, p.user_id,
                                    aof_rewrite=rewrite and i == len(sim.people) - 1)
        sw.close()
    print_report(report, users, days)
    if not all(ok for _, _, ok in report.targets().values()):
        raise SystemExit(1)


def print_report(report, users: int, days: int) -> None:
    console.print(f"{users} people, {days} days of history, {len(report.outcomes):,} scored logins")
    console.print("challenged = require_mfa or block (trust_score < 0.5)")
    console.print(f"ROC AUC (legitimate vs attack, by trust_score): [bold]{report.auc():.4f}[/]")
    roc = Table(title="ROC: challenge below a threshold")
    for col in ("threshold", "attacks challenged", "legitimate challenged"):
        roc.add_column(col, justify="right")
    for t, tpr, fpr in report.roc():
        roc.add_row(f"{t:.2f}", f"{tpr:.1%}", f"{fpr:.1%}")
    console.print(roc)
    table = Table(title="logins by scenario")
    for col, just in (("scenario", "left"), ("kind", "left"), ("logins", "right"), ("challenged", "right"),
                      ("median trust", "right")):
        table.add_column(col, justify=just)
    for r in report.rows():
        table.add_row(r["scenario"], r["kind"], f"{r['logins']:,}", f"{r['challenged']:.1%}", f"{r['median_trust']:.3f}")
    console.print(table)
    for name, (value, goal, ok) in report.targets().items():
        console.print(f"{name}: [bold]{value:.1%}[/] (goal {goal}) {'met' if ok else '[red]NOT met[/]'}")
