"""What a look compares, like with like: the challenger's first n_k trades with the
champion's trades over the same period — and, where both acted on the same
opportunities, the per-opportunity differences.

Why not "the champion's last N trades": that window slides from look to look,
so the champion's sample at look k is not the one at look k−1 plus new trades.
The alpha-spending boundaries assume nested, growing samples (independent
increments); a sliding window breaks that and an established champion's false
promotion rate rises to ~5.5 % (issue 15). Here the champion's sample at look k
is every champion trade opened at or after the challenger's first trade opened
(the start of the shadow period) and closed by the challenger's n_k-th close t_k:
nested, growing, same market, same time. A long champion history before the
challenger arrived is not part of the experiment.

Paired: a champion and a challenger trade carrying the same ``opportunity_id``
acted on the same signal; d = r_challenger − r_champion cancels the market move
both saw, so its variance is 2σ²(1 − ρ) instead of 2σ²: far more power for the
same trades when ρ is high. A pair enters the look at which both outcomes are
known (challenger trade among the first n_k, champion trade closed by t_k).
Each model's first trade on an opportunity is the one paired.

Everything is vectorised over leading "run" axes: the worker passes one run, the
simulation thousands — the same code decides both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .moments import Moments


@dataclass(frozen=True)
class Trades:
    """One model's trades in closing order. Times in seconds (any epoch); ``opportunity``: integer
    codes shared by both models, −1 = none. Leading axes (if any) are independent runs."""

    ret: np.ndarray
    opened: np.ndarray
    closed: np.ndarray
    opportunity: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.ret.shape[-1])

    def head(self, n: int) -> "Trades":
        cut = slice(0, n)
        return Trades(self.ret[..., cut], self.opened[..., cut], self.closed[..., cut],
                      None if self.opportunity is None else self.opportunity[..., cut])


@dataclass(frozen=True)
class Looks:
    """The compared samples at each look (last axis = looks)."""

    challenger: Moments
    champion: Moments          # champion trades over the shadow period up to t_k
    paired: Moments            # per-opportunity differences (n = pairs)
    t: np.ndarray              # t_k: closing time of the challenger's n_k-th trade
    start: np.ndarray          # start of the shadow period (per run)

    @property
    def pair_share(self) -> np.ndarray:
        return self.paired.n / self.challenger.n


def _runs(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=float).reshape(-1, np.shape(a)[-1])


def _sorted_search(grid: np.ndarray, values: np.ndarray, side: str = "left") -> np.ndarray:
    """Row-wise ``np.searchsorted(grid[r], values[r])`` for (runs, ·) arrays, in one call."""
    runs = grid.shape[0]
    lo = min(grid.min(), values.min()) if values.size else grid.min()
    span = max(grid.max(), values.max() if values.size else grid.max()) - lo + 1.0
    off = (np.arange(runs, dtype=float) * span)[:, None]
    pos = np.searchsorted((grid - lo + off).ravel(), (values - lo + off).ravel(), side=side)
    return pos.reshape(values.shape) - (np.arange(runs) * grid.shape[1])[:, None]


def _bucket_moments(values: np.ndarray, bucket: np.ndarray, k: int) -> Moments:
    """Cumulative moments per look of values assigned to look ``bucket`` (k or more = never)."""
    runs = values.shape[0]
    flat = (np.arange(runs)[:, None] * (k + 1) + np.minimum(bucket, k)).ravel()   # column k: never counted
    v = values.ravel()
    v2 = v * v

    def cum(w: np.ndarray | None) -> np.ndarray:
        sums = np.bincount(flat, weights=w, minlength=runs * (k + 1)).reshape(runs, k + 1)[:, :k]
        return np.cumsum(sums, axis=1)

    return Moments(cum(None), cum(v), cum(v2), cum(v2 * v), cum(v2 * v2), cum((v > 0).astype(float)))


def _first_match(ch: np.ndarray, champ: np.ndarray) -> np.ndarray:
    """For each challenger trade, the index of the champion's first trade on the same opportunity
    (−1: none, or not the challenger's first trade on it). Codes are integers ≥ 0; −1 = none."""
    runs, n_ch = ch.shape
    order = np.argsort(champ, axis=1, kind="stable")
    sorted_codes = np.take_along_axis(champ, order, axis=1)
    pos = _sorted_search(sorted_codes.astype(float), ch.astype(float))
    pos_c = np.clip(pos, 0, champ.shape[1] - 1)
    hit = (np.take_along_axis(sorted_codes, pos_c, axis=1) == ch) & (ch >= 0) & (pos < champ.shape[1])
    j = np.where(hit, np.take_along_axis(order, pos_c, axis=1), -1)
    # only the challenger's first trade on an opportunity is paired
    ch_order = np.argsort(ch, axis=1, kind="stable")
    ch_sorted = np.take_along_axis(ch, ch_order, axis=1)
    repeat = np.zeros_like(ch_sorted, dtype=bool)
    repeat[:, 1:] = ch_sorted[:, 1:] == ch_sorted[:, :-1]
    first = np.empty_like(repeat)
    np.put_along_axis(first, ch_order, ~repeat, axis=1)
    return np.where(first, j, -1)


def at_looks(challenger: Trades, champion: Trades, looks: np.ndarray) -> Looks:
    """The compared samples at each planned look (``looks`` ≤ challenger.n), for one run or many."""
    looks = np.asarray(looks, dtype=int)
    k = looks.size
    single = np.ndim(challenger.ret) == 1
    r_ch, closed_ch = _runs(challenger.ret), _runs(challenger.closed)
    r_cp, opened_cp, closed_cp = _runs(champion.ret), _runs(champion.opened), _runs(champion.closed)
    start = _runs(challenger.opened)[:, 0]
    t = closed_ch[:, looks - 1]
    mc = Moments.at_looks(r_ch, looks)
    if r_cp.shape[1]:
        b_cp = _sorted_search(t, closed_cp)                     # first look whose t_k ≥ the champion's close
        b_cp = np.where(opened_cp >= start[:, None], b_cp, k)   # opened before the shadow period: not in it
        mp = _bucket_moments(r_cp, b_cp, k)
    else:
        mp = _bucket_moments(np.zeros((r_ch.shape[0], 0)), np.zeros((r_ch.shape[0], 0), dtype=int), k)
    if challenger.opportunity is not None and champion.opportunity is not None and r_cp.shape[1]:
        j = _first_match(_runs(challenger.opportunity).astype(np.int64), _runs(champion.opportunity).astype(np.int64))
        paired = j >= 0
        jj = np.where(paired, j, 0)
        d = r_ch - np.take_along_axis(r_cp, jj, axis=1)
        b_ch = np.searchsorted(looks, np.arange(1, r_ch.shape[1] + 1), side="left")[None, :]
        b_pair = np.maximum(b_ch, _sorted_search(t, np.take_along_axis(closed_cp, jj, axis=1)))
        md = _bucket_moments(d, np.where(paired, b_pair, k), k)
    else:
        md = _bucket_moments(np.zeros_like(r_ch[:, :0]), np.zeros_like(r_ch[:, :0], dtype=int), k)
    out = Looks(mc, mp, md, t, start)
    return _squeeze(out) if single else _reshape(out, np.shape(challenger.ret)[:-1])


def _map(m: Moments, fn) -> Moments:
    return Moments(*(fn(np.broadcast_to(getattr(m, f), m.s1.shape)) for f in ("n", "s1", "s2", "s3", "s4", "wins")))


def _squeeze(x: Looks) -> Looks:
    return Looks(_map(x.challenger, lambda a: a[0]), _map(x.champion, lambda a: a[0]),
                 _map(x.paired, lambda a: a[0]), x.t[0], x.start[0])


def _reshape(x: Looks, lead: tuple[int, ...]) -> Looks:
    def f(a):
        return a.reshape(*lead, a.shape[-1])

    return Looks(_map(x.challenger, f), _map(x.champion, f), _map(x.paired, f), f(x.t), x.start.reshape(lead))


def window(champion: Trades, start: float, t: float) -> np.ndarray:
    """The champion's returns in the shadow period up to t (one run): what look statistics are made of."""
    keep = (champion.opened >= start) & (champion.closed <= t)
    return champion.ret[keep]


def pair_differences(challenger: Trades, champion: Trades, n_k: int, t: float) -> np.ndarray:
    """Per-opportunity differences available at a look (one run), for the bootstrap and the report."""
    if challenger.opportunity is None or champion.opportunity is None or champion.n == 0:
        return np.zeros(0)
    ch = challenger.head(n_k)
    j = _first_match(ch.opportunity[None, :].astype(np.int64), champion.opportunity[None, :].astype(np.int64))[0]
    ok = (j >= 0) & (champion.closed[np.maximum(j, 0)] <= t)
    return ch.ret[ok] - champion.ret[j[ok]]
