"""`quantpipe shadow simulate`: Monte Carlo of the decision rules through the pool's own decision.

The simulated trades go through the same functions a look runs in the worker
(``comparison.at_looks`` → ``evaluation.gate`` → ``evaluation.decide``), against an
established champion by default, so the printed false promotion rate is the
rate production has (the drawdown criterion, which can only withhold approval,
is left out: the printed rate is an upper bound).
"""

from __future__ import annotations

import click

from cli.console import console, pass_settings


@click.command()
@click.option("--aa", is_flag=True, help="Identical champion and challenger: measure the false promotion rate.")
@click.option("--effect", type=float, default=None,
              help="Challenger better by this many per-trade Sharpe units: power and trades to promotion, "
                   "plus the rollback rule's false-rollback rate.")
@click.option("--runs", type=click.IntRange(min=10), default=1000, show_default=True)
@click.option("--history", type=click.IntRange(min=0), default=None,
              help="Champion trades before the challenger arrived [default: SHADOW_MAX_TRADES, an established "
                   "champion; 0: a fresh one].")
@click.option("--paired", is_flag=True, help="Both models act on the same opportunities (opportunity_id).")
@click.option("--rho", type=click.FloatRange(-0.99, 0.99), default=0.8, show_default=True,
              help="With --paired: correlation of the two models' returns on the same opportunity.")
@click.option("--drop", type=click.FloatRange(0, 1), default=0.05, show_default=True,
              help="Win-rate drop the rollback rule should catch (with --effect).")
@click.option("--seed", type=int, default=None, help="Random seed (default: fresh).")
@pass_settings
def simulate(settings, aa: bool, effect: float | None, runs: int, history: int | None, paired: bool, rho: float,
             drop: float, seed: int | None) -> None:
    """Monte Carlo of the real evaluation schedule and decision (no database), vectorised over runs.

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
    history = cfg.horizon if history is None else history
    rng = np.random.default_rng(seed)
    console.print(f"schedule: {cfg.looks.size} looks at {cfg.looks[0]}..{cfg.horizon} (every {cfg.interval}), "
                  f"{cfg.spending} spending, alpha {cfg.alpha}")
    who = f"established ({history} trades before the challenger)" if history else "fresh"
    console.print(f"champion: {who}, " + (f"paired (rho {rho})" if paired else "unpaired"))
    console.print("decision: the worker's (comparison.at_looks → evaluation.gate/decide)")
    step = max(min(runs // 20, 500), 10)

    def batched(label, **kw):
        hits, n, when = 0, 0, []
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(label, total=runs)
            while n < runs:
                m = min(step, runs - n)
                rate, w = sim.promotion_runs(cfg, m, rng, history=history, paired=paired, rho=rho, **kw)
                hits, n = hits + rate.hits, n + m
                when.append(w)
                progress.advance(task, m)
        return sim.Rate(hits, runs), np.concatenate(when)

    if aa:
        rate, _ = batched("A/A runs")
        console.print(rate.line("false promotion rate"))
    if effect is not None:
        rate, when = batched("effect runs", effect=effect)
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
