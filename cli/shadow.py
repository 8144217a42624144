"""`quantpipe shadow`: champion/challenger administration — a client of the pool's public API
(``workers.shadow.service``): it formats, the pool decides.

deploy | status [--watch] | compare | promote | rollback | history | record-trades | simulate | checkpoint
"""

from __future__ import annotations

import contextlib
import getpass
import json
import time

import click

from cli.console import console, fail, pass_settings, settings_or_fail


def actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return "cli"


def _pct(v, digits: int = 1) -> str:
    return "—" if v is None else f"{v:.{digits}%}"


def _num(v, fmt: str = ".3f") -> str:
    return "—" if v is None else format(v, fmt)


@contextlib.contextmanager
def user_errors():
    """Turn the pool's user errors into one-line CLI errors (exit 1)."""
    from workers.shadow.checkpoint import CheckpointError
    from workers.shadow.errors import ShadowError
    from workers.shadow.trade_file import TradeFileError

    try:
        yield
    except (ShadowError, CheckpointError, TradeFileError) as exc:
        fail(str(exc))


@click.group()
@click.pass_context
def shadow(ctx: click.Context) -> None:
    """Shadow pool: deploy, compare, promote, roll back.

    A champion trades live; challengers trade in shadow at 0 % capital and are
    evaluated against the champion's trades over the same period every
    SHADOW_CHECK_INTERVAL trades from SHADOW_MIN_TRADES on, with a sequential
    (alpha-spending) test that keeps false promotions ≤ SHADOW_ALPHA.
    """
    settings = settings_or_fail()
    if not settings.shadow.enabled and ctx.invoked_subcommand != "simulate":
        console.print("[yellow]shadow pool disabled (ENABLE_SHADOW_MODELS=false): nothing done[/]")
        ctx.exit(0)


@shadow.command()
@click.argument("name")
@click.option("--type", "model_type", required=True, help="Model family, e.g. momentum, mean_reversion.")
@click.option("--description", default="", help="Free text shown in status.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="Model parameter (repeatable); values are parsed as JSON when possible.")
@click.option("--champion", is_flag=True, help="Deploy as the champion (only when there is none yet).")
def deploy(name: str, model_type: str, description: str, params: tuple[str, ...], champion: bool) -> None:
    """Register a model: a challenger in shadow (0 % capital), or the first champion.

    Example: quantpipe shadow deploy mom_v2 --type momentum --param lookback=20
    """
    from workers.shadow import service

    parameters = {}
    for p in params:
        key, sep, value = p.partition("=")
        if not sep or not key:
            fail(f"--param: {p!r} is not KEY=VALUE")
        try:
            parameters[key] = json.loads(value)
        except json.JSONDecodeError:
            parameters[key] = value
    with user_errors():
        out = service.deploy(name, model_type, description, parameters, champion)
    verb = "deployed" if out["created"] else "already deployed"
    console.print(f"[green]{name}[/] {verb} as [bold]{out['role']}[/]"
                  + (" (0 % capital, evaluated in shadow)" if out["role"] == "challenger" else ""))


def _status_table(settings, wide: bool):
    from rich import box
    from rich.table import Table

    from workers.shadow import service

    data = service.status(settings)
    rows = ([data["champion"]] if data["champion"] else []) + data["challengers"]
    sh = settings.shadow
    narrow = not wide and console.width < 120  # 80 columns: no borders, the secondary columns go
    caption = (f"min trades {sh.min_trades}, alpha {sh.alpha}, every {sh.check_interval} trades; --wide: P(best), needs"
               if narrow else f"min trades {sh.min_trades}, alpha {sh.alpha}, checks every {sh.check_interval} trades")
    table = Table(title="Shadow models", caption=caption,
                  box=box.SIMPLE_HEAD if narrow else box.HEAVY_HEAD)
    cols = ["model", "role", "trades", "win rate", "Sharpe", "max DD", "P(best)", "last decision", "needs"]
    if wide:
        cols[2:2] = ["type"]
        cols[6:6] = ["mean", "capital", "explore"]
    if narrow:
        cols = [c for c in cols if c not in ("P(best)", "needs")]
    for col in cols:
        table.add_column(col, justify="left" if col in ("model", "role", "type", "last decision") else "right",
                         overflow="fold", no_wrap=col not in ("model", "last decision"))
    for r in rows:
        m = r["metrics"] or {}
        style = {"champion": "bold green", "challenger": "cyan"}.get(r["role"], "dim")
        chal = r["role"] == "challenger"
        last = "—" if not chal or r["evaluated_at_trades"] is None else \
            f"{r['promotion_status']} ({r['promotion_score']:.0f}) @ {r['evaluated_at_trades']}"
        needs = "—" if not chal or r["min_track_record"] is None else \
            (f"≈{r['needs_trades']} more" if r["needs_trades"] else "reached")
        cells = {"model": r["model_name"], "role": f"[{style}]{r['role']}[/]", "type": r["model_type"],
                 "trades": str(r["trade_count"]), "win rate": _pct(m.get("win_rate")),
                 "Sharpe": _num(m.get("sharpe_ratio")), "max DD": _pct(m.get("max_drawdown")),
                 "mean": _pct(m.get("mean_return"), 3), "capital": _pct(r["allocation"], 0),
                 "explore": _pct(r.get("exploration"), 0), "P(best)": _pct(r.get("p_best"), 0),
                 "last decision": last, "needs": needs}
        table.add_row(*(cells[c] for c in cols))
    if not rows:
        table.caption = "no models yet: quantpipe shadow deploy NAME --type TYPE [--champion]"
    return table


@shadow.command()
@click.option("--watch", is_flag=True, help="Refresh the table live until Ctrl-C.")
@click.option("--interval", type=click.FloatRange(min=0.2), default=2.0, show_default=True,
              help="Seconds between refreshes with --watch.")
@click.option("--wide", is_flag=True, help="Also show type, mean return, capital and exploration share.")
@click.option("--iterations", type=click.IntRange(min=1), default=None, hidden=True)
@pass_settings
def status(settings, watch: bool, interval: float, wide: bool, iterations: int | None) -> None:
    """Champion and challengers: trades, win rate, Sharpe, drawdown, Thompson P(best), last decision and the
    trades a challenger still needs before its Sharpe can be told from the champion's (MinTRL)."""
    if not watch:
        console.print(_status_table(settings, wide))
        return
    from rich.live import Live

    n = 0
    try:
        with Live(_status_table(settings, wide), console=console, refresh_per_second=4) as live:
            while iterations is None or n < iterations:
                time.sleep(interval)
                live.update(_status_table(settings, wide))
                n += 1
    except KeyboardInterrupt:
        pass


def criteria_table(ev: dict):
    from rich.table import Table

    table = Table(title=f"decision [bold]{ev['decision']}[/] — score {ev['score']:.1f}/100 "
                        f"at {ev['n_trades']} trades")
    for col in ("criterion", "kind", "pass", "reason"):
        table.add_column(col)
    for c in ev["criteria"]:
        table.add_row(c["name"], "primary" if c["primary"] else "secondary",
                      "[green]yes[/]" if c["passed"] else "[red]no[/]", c["reason"])
    return table


@shadow.command()
@click.argument("challenger")
@pass_settings
def compare(settings, challenger: str) -> None:
    """Evaluate CHALLENGER against the champion now (read-only: nothing is stored or promoted)."""
    from workers.shadow import service

    with user_errors():
        out = service.comparison(challenger, settings)
    if out["evaluated_at_trades"] is None:
        console.print(f"PENDING: {challenger} has {out['trade_count']} trades, evaluation starts at "
                      f"SHADOW_MIN_TRADES={settings.shadow.min_trades}")
        return
    console.print(criteria_table({"decision": out["promotion_status"], "score": out["promotion_score"],
                                  "n_trades": out["evaluated_at_trades"], "criteria": out["criteria"]}))
    cmp_ = out["metrics"].get("comparison", {})
    console.print(f"compared with {out['champion']}: {cmp_.get('champion_trades')} champion trades over the "
                  f"same period, {cmp_.get('mode')} ({cmp_.get('pairs')} shared opportunities)")
    trl = out["min_track_record"] or {}
    console.print(f"minimum track record: {trl.get('reason', '—')}")


@shadow.command()
@click.argument("challenger")
@click.option("--force", is_flag=True, help="Promote even if the evaluation does not approve (needs --reason).")
@click.option("--reason", default=None, help="Why (required with --force; recorded in the history).")
@pass_settings
def promote(settings, challenger: str, force: bool, reason: str | None) -> None:
    """Make CHALLENGER the champion: only when APPROVED, or with --force --reason.

    The swap is one transaction; the previous champion is archived (rollback restores it).
    """
    from workers.shadow import service

    if force and not (reason and reason.strip()):
        fail("--reason: required with --force (it is recorded in the promotion history)")
    with user_errors():
        out = service.promote(challenger, actor=actor(), reason=reason, force=force, settings=settings)
    if out["evaluation"] and out["evaluation"].get("criteria"):
        console.print(criteria_table(out["evaluation"]))
    if out["promoted"]:
        how = f"forced by {actor()}, " if force else ""
        console.print(f"[green]{challenger} is the champion[/] ({how}{out['elapsed_ms']:.1f} ms)")
        return
    fail(f"{out['message']}; not promoted (use --force --reason to override)")


@shadow.command()
@click.option("--reason", required=True, help="Why (recorded in the promotion history).")
def rollback(reason: str) -> None:
    """Give the champion role back to the model the current champion replaced."""
    from workers.shadow import service

    with user_errors():
        out = service.rollback(actor=actor(), reason=reason)
    console.print(f"[yellow]rolled back[/]: {out['champion']} is the champion again ({out['elapsed_ms']:.1f} ms)")


@shadow.command()
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
def history(limit: int) -> None:
    """Promotion history: promote, manual, rollback and reject events, newest first."""
    from datetime import datetime

    from rich.table import Table

    from workers.shadow import service

    rows = service.history(limit)
    table = Table(title="Promotion history")
    for col in ("when", "event", "from", "to", "actor", "ms", "reason"):
        table.add_column(col)
    for r in rows:
        when = datetime.fromisoformat(r["created_at"]).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(when, r["event"], r["from"] or "—", r["to"] or "—", r["actor"], f"{r['elapsed_ms']:.1f}",
                      r["reason"])
    console.print(table if rows else "no promotion events yet")


def _register() -> None:
    from cli.shadow_checkpoint import checkpoint
    from cli.shadow_simulate import simulate
    from cli.shadow_trades import record_trades

    for cmd in (record_trades, simulate, checkpoint):
        shadow.add_command(cmd)


_register()
