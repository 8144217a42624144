"""Co-trading network: members who trade the same ticker in the same direction within days.

Edge weight = number of (ticker, direction, day) events of one member that have an
event of the other within ``window_days``. Significance: each member's trade dates
are shuffled among their own trades (keeping how much and what they trade) and the
weights recomputed; p = (1 + #null >= observed) / (1 + n_shuffles). Communities of
the significant-edge graph come from networkx's Louvain method (fixed seed).

Members are numbered by the caller (``politician_id`` holds small integers, in the
politicians' natural-key order): the graph, and so Louvain's result, then does not
depend on how ids are generated. ``ids`` maps those numbers to the ids stored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import networkx as nx
import numpy as np
import pandas as pd

from .findings import Finding, unit
from .regress import fdr_bh


def pair_counts(group: np.ndarray, member: np.ndarray, day: np.ndarray, window: int, n_members: int) -> np.ndarray:
    """Flat (n_members x n_members, upper triangle) counts of co-trades within ``window`` days."""
    # one int64 key (group, then day), sorted. Not a stable sort: which events share a key decides the
    # pairs counted (every two events within ``window`` of each other), not their order among equals,
    # and numpy's default sort of int64 is several times faster (SIMD) than its stable one.
    key = group.astype(np.int64) * (int(day.max()) + window + 2) + day
    order = np.argsort(key)
    m, key = member[order], key[order]
    n = len(key)
    end = np.searchsorted(key, key + window, side="right")
    cnt = end - np.arange(n) - 1
    i = np.repeat(np.arange(n), cnt)
    j = i + 1 + (np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt))
    mi, mj = m[i], m[j]
    keep = mi != mj
    a, b = np.minimum(mi[keep], mj[keep]), np.maximum(mi[keep], mj[keep])
    return np.bincount(a.astype(np.int64) * n_members + b, minlength=n_members * n_members)


def draw_order(draws: np.ndarray) -> np.ndarray:
    """``np.argsort(draws, kind="stable")``: the default (SIMD) sort, whose order differs from the
    stable one only among equal draws, and the stable sort when two draws are equal (about once in
    10^8 shuffles of 13k uniform doubles)."""
    order = np.argsort(draws)
    d = draws[order]
    return np.argsort(draws, kind="stable") if (d[1:] == d[:-1]).any() else order


def _events(trades: pd.DataFrame) -> pd.DataFrame:
    df = trades.dropna(subset=["ticker"])
    df = df[df["direction"] != 0]
    ev = pd.DataFrame({"pid": df["politician_id"].astype(np.int64),
                       "group": df["ticker"] + ":" + df["direction"].astype(str),
                       "day": pd.to_datetime(df["transaction_date"]).values.astype("datetime64[D]").astype(np.int64)})
    return ev.drop_duplicates().sort_values(["pid", "group", "day"]).reset_index(drop=True)


def co_trading(trades: pd.DataFrame, *, window_days: int = 7, n_shuffles: int = 200, alpha: float = 0.01,
               min_weight: int = 3, seed: int = 20120404, names: Mapping[int, str] | None = None,
               ids: Mapping[int, str] | None = None) -> list[Finding]:
    """Significant pairs and their communities. ``trades``: politician_id (member number), ticker,
    direction (+1/-1), transaction_date; ``ids`` (number -> stored id, default the number itself)
    name the members of a finding; ``names`` (number -> name) only make descriptions readable."""
    names = names or {}

    def who(pid: int) -> str:
        return names[pid] if pid in names else f"politician {external(pid)}"

    def external(pid: int) -> str:
        return ids[pid] if ids is not None else str(pid)

    ev = _events(trades)
    if ev.empty or ev["pid"].nunique() < 2:
        return []
    pids = np.sort(ev["pid"].unique())
    member = np.searchsorted(pids, ev["pid"].to_numpy())
    group = pd.factorize(ev["group"], sort=True)[0]
    day = ev["day"].to_numpy() - ev["day"].min()
    n = len(pids)
    observed = pair_counts(group, member, day, window_days, n)
    candidates = np.flatnonzero(observed >= min_weight)
    if len(candidates) == 0:
        return []
    rng = np.random.default_rng(seed)
    by_member = np.argsort(member, kind="stable")
    exceed = np.zeros(len(candidates))
    null_sum = np.zeros(len(candidates))
    member16 = member.astype(np.int16) if n < 2 ** 15 else member  # small ints: numpy's stable sort is a radix sort
    for _ in range(n_shuffles):
        shuffled = np.empty_like(day)
        # lexsort((random, member)) as two stable sorts: by the random draw, then (radix) by member
        by_draw = draw_order(rng.random(len(day)))
        shuffled[by_member] = day[by_draw[np.argsort(member16[by_draw], kind="stable")]]
        null = pair_counts(group, member, shuffled, window_days, n)[candidates]
        exceed += null >= observed[candidates]
        null_sum += null
    p = (1 + exceed) / (1 + n_shuffles)
    q = fdr_bh(p)  # Benjamini–Hochberg over every candidate pair tested (multipletests(p, method="fdr_bh")[1])
    expected = null_sum / n_shuffles
    params = {"window_days": window_days, "n_shuffles": n_shuffles, "alpha": alpha, "min_weight": min_weight,
              "seed": seed, "null": "dates shuffled within each member"}
    out: list[Finding] = []
    graph = nx.Graph()
    for code, pv, qv, exp in zip(candidates, p, q, expected):
        if pv > alpha:
            continue
        a, b = int(pids[code // n]), int(pids[code % n])
        w = int(observed[code])
        graph.add_edge(a, b, weight=w)
        pair = tuple(sorted((external(a), external(b))))
        out.append(Finding(
            kind="co_trading_pair", subject="-".join(pair), members=pair, score=unit(1 - exp / w),
            confidence=unit(1 - pv),
            description=(f"{who(a)} and {who(b)} traded the same ticker in the same direction within "
                         f"{window_days} days {w} times; shuffled dates give {exp:.1f} on average (p={pv:.3g})."),
            parameters=params, evidence={"weight": w, "null_mean": float(exp), "p_value": float(pv),
                                         "q_value_bh": float(qv), "pairs_tested": int(len(candidates))},
        ))
    if graph.number_of_edges():
        for community in nx.community.louvain_communities(graph, weight="weight", seed=seed):
            if len(community) < 3:
                continue
            nodes = tuple(sorted(int(x) for x in community))
            members = tuple(sorted(external(i) for i in nodes))
            sub = graph.subgraph(nodes)
            density = nx.density(sub)
            pair_conf = [f.confidence for f in out if f.kind == "co_trading_pair" and set(f.members) <= set(members)]
            digest = hashlib.sha1(",".join(members).encode()).hexdigest()[:16]
            out.append(Finding(
                kind="co_trading_community", subject=f"community:{digest}", members=members, score=unit(density),
                confidence=unit(float(np.mean(pair_conf))),
                description=(f"A group of {len(nodes)} members linked by {sub.number_of_edges()} significant "
                             f"co-trading pairs (edge density {density:.2f}): "
                             + ", ".join(who(i) for i in nodes[:12]) + ("…" if len(nodes) > 12 else "") + "."),
                parameters=params,
                evidence={"members": list(members), "edges": [[external(u), external(v), int(d["weight"])]
                                                              for u, v, d in sorted(sub.edges(data=True))]},
            ))
    return out
