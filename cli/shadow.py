"""`quantpipe shadow`: champion/challenger administration.

deploy | status [--watch] | compare | promote | rollback | history | record-trades | simulate | checkpoint
"""

from __future__ import annotations

import csv
import getpass
import json
import time
from pathlib import Path

import click

from cli.console import console, fail, pass_settings, settings_or_fail


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return "cli"


def _pct(v, digits: int = 1) -> str:
    return "—" if v is None else f"{v:.{digits}%}"


def _num(v, fmt: str = ".3f") -> str:
    return "—" if v is None else format(v, fmt)


def _user_errors():
    """Run a block and turn registry errors into one-line CLI errors."""
    import contextlib

    from workers.shadow.checkpoint import CheckpointError
    from workers.shadow.registry import ShadowError

    @contextlib.contextmanager
    def guard():
        try:
            yield
        except (ShadowError, CheckpointError) as exc:
            fail(str(exc))

    return guard()


def _send_alerts(alerts) -> None:
    from workers.shadow.alerts import emit

    if alerts:
        emit(alerts)


@click.group()
@click.pass_context
def shadow(ctx: click.Context) -> None:
    """Shadow pool: deploy, compare, promote, roll back.

    A champion trades live; challengers trade in shadow at 0 % capital and are
    evaluated against it every SHADOW_CHECK_INTERVAL trades from SHADOW_MIN_TRADES on,
    with a sequential (alpha-spending) test that keeps false promotions ≤ SHADOW_ALPHA.
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
@pass_settings
def deploy(settings, name: str, model_type: str, description: str, params: tuple[str, ...], champion: bool) -> None:
    """Register a model: a challenger in shadow (0 % capital), or the first champion.

    Example: quantpipe shadow deploy mom_v2 --type momentum --param lookback=20
    """
    from shared_models.db import unit_of_work
    from workers.shadow import registry

    parameters = {}
    for p in params:
        key, sep, value = p.partition("=")
        if not sep or not key:
            fail(f"--param: {p!r} is not KEY=VALUE")
        try:
            parameters[key] = json.loads(value)
        except json.JSONDecodeError:
            parameters[key] = value
    with _user_errors(), unit_of_work() as session:
        model, created = registry.deploy(session, name, model_type, description, parameters, champion)
        role = model.role
    verb = "deployed" if created else "already deployed"
    console.print(f"[green]{name}[/] {verb} as [bold]{role}[/]"
                  + (" (0 % capital, evaluated in shadow)" if role == "challenger" else ""))


def _status_table(settings):
    from rich.table import Table

    from shared_models.db import unit_of_work
    from workers.shadow.dashboard import overview

    with unit_of_work() as session:
        rows = overview(session, settings)
    table = Table(title="Shadow models", caption=f"min trades {settings.shadow.min_trades}, "
                  f"alpha {settings.shadow.alpha}, checks every {settings.shadow.check_interval} trades")
    for col in ("model", "role", "type", "trades", "progress", "win rate", "mean", "Sharpe", "max DD",
                "capital", "P(best)", "explore", "last decision"):
        table.add_column(col, justify="right" if col not in ("model", "role", "type", "last decision") else "left")
    for r in rows:
        style = {"champion": "bold green", "challenger": "cyan"}.get(r["role"], "dim")
        last = "—" if r["last_decision"] is None else \
            f"{r['last_decision']} ({r['last_score']:.0f}) @ {r['evaluated_at_trades']}"
        table.add_row(r["name"], f"[{style}]{r['role']}[/]", r["type"], str(r["trades"]), _pct(r["progress"], 0),
                      _pct(r["win_rate"]), _pct(r["mean_return"], 3), _num(r["sharpe"]), _pct(r["max_drawdown"]),
                      _pct(r["allocation"], 0), _pct(r["p_best"], 0), _pct(r["exploration"], 0), last)
    if not rows:
        table.caption = "no models yet: quantpipe shadow deploy NAME --type TYPE [--champion]"
    return table


@shadow.command()
@click.option("--watch", is_flag=True, help="Refresh the table live until Ctrl-C.")
@click.option("--interval", type=click.FloatRange(min=0.2), default=2.0, show_default=True,
              help="Seconds between refreshes with --watch.")
@click.option("--iterations", type=click.IntRange(min=1), default=None, hidden=True)
@pass_settings
def status(settings, watch: bool, interval: float, iterations: int | None) -> None:
    """Champion and challengers: trades, win rate, Sharpe, drawdown, capital, Thompson P(best)."""
    if not watch:
        console.print(_status_table(settings))
        return
    from rich.live import Live

    n = 0
    try:
        with Live(_status_table(settings), console=console, refresh_per_second=4) as live:
            while iterations is None or n < iterations:
                time.sleep(interval)
                live.update(_status_table(settings))
                n += 1
    except KeyboardInterrupt:
        pass


def _criteria_table(ev: dict):
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
    from shared_models.db import session_factory
    from workers.shadow import registry
    from workers.shadow.decisions import run_evaluation
    from workers.shadow.service import jsonable
    from workers.shadow.evaluation import EvalConfig

    with _user_errors(), session_factory()() as session:
        ch = registry.get_model(session, challenger)
        champ = registry.get_champion(session)
        if champ is None:
            fail("champion: there is no champion to compare with")
        if ch.id == champ.id:
            fail(f"challenger: {challenger!r} is the champion")
        done = run_evaluation(session, ch, champ, EvalConfig.from_settings(settings))
        n = registry.trade_count(session, ch.id)
        session.rollback()
    if done is None:
        console.print(f"PENDING: {challenger} has {n} trades, evaluation starts at SHADOW_MIN_TRADES="
                      f"{settings.shadow.min_trades}")
        return
    console.print(_criteria_table(jsonable(done[1].as_dict())))


@shadow.command()
@click.argument("challenger")
@click.option("--force", is_flag=True, help="Promote even if the evaluation does not approve (needs --reason).")
@click.option("--reason", default=None, help="Why (required with --force; recorded in the history).")
@pass_settings
def promote(settings, challenger: str, force: bool, reason: str | None) -> None:
    """Make CHALLENGER the champion: only when APPROVED, or with --force --reason.

    The swap is one transaction; the previous champion is archived (rollback restores it).
    """
    from shared_models.db import unit_of_work
    from workers.shadow import decisions

    if force and not (reason and reason.strip()):
        fail("--reason: required with --force (it is recorded in the promotion history)")
    with _user_errors():
        if force:
            with unit_of_work() as session:
                ev = decisions.promote(session, challenger, actor=_actor(), reason=reason, force=True)
                ms = ev.elapsed_ms
            from workers.shadow.alerts import Alert

            _send_alerts([Alert("promotion", challenger, f"{challenger} promoted manually: {reason}",
                                {"elapsed_ms": ms, "forced": True})])
            console.print(f"[green]{challenger} is the champion[/] (forced by {_actor()}, {ms:.1f} ms)")
            return
        with unit_of_work() as session:
            out = decisions.evaluate_challenger(session, challenger, settings, auto_promote=True, actor=_actor())
    _send_alerts(out.alerts)
    if out.evaluation and out.evaluation.get("criteria"):
        console.print(_criteria_table(out.evaluation))
    if out.decision == "APPROVED":
        console.print(f"[green]{challenger} is the champion[/]")
        return
    fail(f"{out.message}; not promoted (use --force --reason to override)")


@shadow.command()
@click.option("--reason", required=True, help="Why (recorded in the promotion history).")
@pass_settings
def rollback(settings, reason: str) -> None:
    """Give the champion role back to the model the current champion replaced."""
    from shared_models.db import unit_of_work
    from workers.shadow import decisions
    from workers.shadow.alerts import Alert

    with _user_errors(), unit_of_work() as session:
        ev = decisions.rollback(session, actor=_actor(), reason=reason)
        ms, to = ev.elapsed_ms, ev.to_model_id
        from shared_models.models.shadow import ShadowModel

        name = session.get(ShadowModel, to).name
    _send_alerts([Alert("rollback", name, f"manual rollback to {name}: {reason}", {"elapsed_ms": ms})])
    console.print(f"[yellow]rolled back[/]: {name} is the champion again ({ms:.1f} ms)")


@shadow.command()
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@pass_settings
def history(settings, limit: int) -> None:
    """Promotion history: promote, manual, rollback and reject events, newest first."""
    from rich.table import Table

    from shared_models.db import unit_of_work
    from workers.shadow import registry

    with unit_of_work() as session:
        rows = registry.history(session, limit)
    table = Table(title="Promotion history")
    for col in ("when", "event", "from", "to", "actor", "ms", "reason"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["created_at"].strftime("%Y-%m-%d %H:%M:%S"), r["event"], r["from"] or "—", r["to"] or "—",
                      r["actor"], f"{r['elapsed_ms']:.1f}", r["reason"])
    console.print(table if rows else "no promotion events yet")


@shadow.command("record-trades")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--model", default=None, help="Model of every row (else a 'model' column is required).")
@click.option("--evaluate/--no-evaluate", default=True, show_default=True,
              help="Enqueue shadow.evaluate on the workers when a planned look is reached.")
@pass_settings
def record_trades(settings, file: Path, model: str | None, evaluate: bool) -> None:
    """Import closed trades from a CSV file (idempotent: re-importing changes nothing).

    Columns: trade_id, opened_at, closed_at (ISO-8601), return (fraction, 0.012 = +1.2 %),
    pnl, optional shadow (true/false) and model. Bad rows are kept in dead_letters with the
    reason and the column at fault.
    """
    from rich.progress import Progress
    from rich.table import Table

    with open(file, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        required = {"trade_id", "opened_at", "closed_at", "return"}
        missing = required - set(reader.fieldnames or [])
        if missing:
            fail(f"{file}: missing column(s) {', '.join(sorted(missing))}")
        if model is None and "model" not in (reader.fieldnames or []):
            fail("--model: required when the file has no 'model' column")
        rows = list(reader)
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(model or (r.get("model") or "").strip(), []).append(r)
    from workers.shadow import service

    results, to_evaluate = [], []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("recording trades", total=len(rows))
        for name, batch in groups.items():
            for start in range(0, len(batch), 2000):
                chunk = batch[start:start + 2000]
                res = service.record_trades(name, chunk, source=f"cli:{file.name}", settings=settings)
                if res.evaluate:
                    to_evaluate.append(name)
                results.append(res)
                progress.advance(task, len(chunk))
    table = Table(title=f"{file.name}")
    for col in ("model", "inserted", "duplicates", "rejected", "total trades"):
        table.add_column(col, justify="right" if col != "model" else "left")
    totals: dict[str, list[int]] = {}
    for r in results:
        t = totals.setdefault(r.model, [0, 0, 0, 0])
        t[0] += r.inserted
        t[1] += r.duplicates
        t[2] += r.rejected
        t[3] = r.total
    for name, (ins, dup, rej, tot) in totals.items():
        table.add_row(name, str(ins), str(dup), f"[red]{rej}[/]" if rej else "0", str(tot))
    console.print(table)
    if any(t[2] for t in totals.values()):
        console.print("[red]rejected rows were kept in dead_letters (pool 'shadow') with the reason[/]")
    if evaluate and to_evaluate:
        from workers.shadow.tasks import evaluate as evaluate_task

        for name in sorted(set(to_evaluate)):
            evaluate_task.delay(name)
        console.print(f"evaluation enqueued for {', '.join(sorted(set(to_evaluate)))}")


@shadow.command()
@click.option("--aa", is_flag=True, help="Identical champion and challenger: measure the false promotion rate.")
@click.option("--effect", type=float, default=None,
              help="Challenger better by this many per-trade Sharpe units: power and trades to promotion, "
                   "plus the rollback rule's false-rollback rate.")
@click.option("--runs", type=click.IntRange(min=10), default=1000, show_default=True)
@click.option("--drop", type=click.FloatRange(0, 1), default=0.05, show_default=True,
              help="Win-rate drop the rollback rule should catch (with --effect).")
@click.option("--seed", type=int, default=None, help="Random seed (default: fresh).")
@pass_settings
def simulate(settings, aa: bool, effect: float | None, runs: int, drop: float, seed: int | None) -> None:
    """Monte Carlo of the real evaluation schedule (no database), vectorised over runs.

    Example: quantpipe shadow simulate --aa --runs 2000
    """
    import numpy as np
    from rich.progress import Progress

    from workers.shadow import rollback as rb
    from workers.shadow import simulation as sim
    from workers.shadow.evaluation import EvalConfig

    if not aa and effect is None:
        aa = True
    cfg = EvalConfig.from_settings(settings)
    rng = np.random.default_rng(seed)
    console.print(f"schedule: looks at {cfg.looks[0]}..{cfg.horizon} every {cfg.interval} trades "
                  f"({cfg.looks.size} looks), {cfg.spending} alpha spending, alpha {cfg.alpha}")
    step = max(runs // 20, 10)

    def batched(fn, label):
        hits, n, when = 0, 0, []
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(label, total=runs)
            while n < runs:
                m = min(step, runs - n)
                rate, w = fn(m)
                hits, n = hits + rate.hits, n + m
                when.append(w)
                progress.advance(task, m)
        return sim.Rate(hits, runs), np.concatenate(when)

    if aa:
        rate, _ = batched(lambda m: sim.promotion_runs(cfg, m, rng), "A/A runs")
        console.print(rate.line("false promotion rate"))
    if effect is not None:
        rate, when = batched(lambda m: sim.promotion_runs(cfg, m, rng, effect=effect), "effect runs")
        console.print(rate.line(f"power (effect {effect} Sharpe/trade)"))
        if when.size:
            console.print(f"trades to promotion: median {np.median(when):.0f}, "
                          f"p10 {np.percentile(when, 10):.0f}, p90 {np.percentile(when, 90):.0f}")
        rcfg = rb.RollbackConfig.from_settings(settings)
        equal = sim.rollback_runs(rcfg, runs, rng)
        console.print(equal["sequential"].line("false rollback rate"))
        console.print(equal["seed_rule"].line("seed rule (drop > 5 points in 100 trades) false rollback rate"))
        bad = sim.rollback_runs(rcfg, runs, rng, drop=drop)
        console.print(bad["sequential"].line(f"rollback detection ({drop:.0%} win-rate drop)")
                      + (f", median {bad['median_trades']:.0f} trades" if bad["median_trades"] else ""))


@shadow.group()
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
    from shared_models.db import unit_of_work
    from workers.shadow import checkpoint as cp

    path = path or settings.shadow.checkpoint_path
    with _user_errors():
        doc = cp.load(path)
        if not yes:
            click.confirm(f"replace the shadow registry with {path} ({doc['exported_at']})?", abort=True)
        with console.status(f"importing {path}"), unit_of_work() as session:
            cp.restore(session, path)
    counts = ", ".join(f"{v} {k}" for k, v in doc["counts"].items())
    console.print(f"[green]registry restored[/] from {path} ({counts})")
