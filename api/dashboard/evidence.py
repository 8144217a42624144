"""Pictures of a finding's evidence: the cycle's periodogram with its false-alarm level, the abnormal-return
window against the S&P 500, trades on the ticker's price chart, the co-trading network."""

from __future__ import annotations

import math
from typing import Any

from . import charts

MAX_WINDOWS = 4  # abnormal-return pictures per politician page (the strongest)


def _d(row: Any) -> dict:
    return row if isinstance(row, dict) else row.model_dump()


def _round_period(days: float, to) -> float:
    """``days`` rounded (down or up, by ``to``) to one significant digit: 696.667 -> 700, 2.4 -> 2."""
    step = 10.0 ** math.floor(math.log10(days))
    return float(to(days / step) * step)


def periodogram(finding: dict) -> dict | None:
    ev = finding.get("evidence") or {}
    pg = ev.get("periodogram")
    if not pg:
        return None
    option = charts.lines([{"name": "Lomb–Scargle power", "x": pg["period_days"], "y": pg["power_z"]}],
                          x_name="period (days)", y_name="power z",
                          mark_y=[(f"false-alarm level (p = {finding['parameters'].get('fap_threshold', 0.01)})",
                                   round(ev["false_alarm_level_z"], 3))])
    # the axis ends on round periods: its end labels are drawn, and '696.667' ran off the chart
    option["xAxis"].update(type="log", min=_round_period(min(pg["period_days"]), math.floor),
                           max=_round_period(max(pg["period_days"]), math.ceil))
    # the period beside a dot, not inside a pin: '373 d' was wider than the pin it sat in
    option["series"][0]["markPoint"] = {"symbol": "circle", "symbolSize": 10,
                                        "label": {"position": "top", "fontWeight": "bold"}, "data": [
        {"coord": [ev["period_days"], ev["power_z"]], "value": f"{ev['period_days']:.0f} d"}]}
    return option


def car_window(finding: dict) -> dict | None:
    ev = finding.get("evidence") or {}
    w = ev.get("window")
    if not w:
        return None
    pct = lambda xs: [round(x * 100, 3) for x in xs]  # noqa: E731
    option = charts.lines([{"name": ev.get("ticker", "stock"), "x": w["day"], "y": pct(w["stock"])},
                           {"name": "S&P 500", "x": w["day"], "y": pct(w["market"])},
                           {"name": "abnormal (market model)", "x": w["day"], "y": pct(w["abnormal"])}],
                          x_name="trading days from the trade", y_name="cumulative return", y_suffix=" %")
    option["series"][0]["markLine"] = {"symbol": "none", "silent": True, "data": [
        {"xAxis": 0, "label": {"formatter": "trade"}, "lineStyle": {"color": "#6e7781"}},
        {"xAxis": 20, "label": {"formatter": "CAR 20 d"}, "lineStyle": {"type": "dashed", "color": "#6e7781"}}]}
    return option


def for_findings(patterns: list, anomalies: list) -> list[dict]:
    """(finding, picture) for every finding that has one: cycles, then the strongest abnormal returns."""
    out = []
    for f in map(_d, patterns):
        if f["pattern_type"] == "fourier_cycle" and (opt := periodogram(f)):
            out.append({"finding": f, "kind": "periodogram", "option": opt, "id": f"pattern-{f['id']}"})
    windows = sorted((a for a in map(_d, anomalies) if a["anomaly_type"] == "abnormal_return"),
                     key=lambda a: -a["severity"])[:MAX_WINDOWS]
    for a in windows:
        if opt := car_window(a):
            out.append({"finding": a, "kind": "car", "option": opt, "id": f"anomaly-{a['id']}"})
    return out


def trades_on_price(closes, trades: list) -> dict:
    """The ticker's closes with a marker per trade (buy up, sell down) and the disclosure it waited for."""
    days = [d.isoformat() for d in closes.days]
    price = dict(zip(days, closes.close))

    def at(day) -> float | None:
        key = day.isoformat()
        if key in price:
            return price[key]
        later = [d for d in days if d >= key]
        return price[later[0]] if later else None

    buys, sells, disclosed = [], [], []
    for t in trades:
        y = at(t.transaction_date)
        if y is None:
            continue
        lag = (t.disclosure_date - t.transaction_date).days if t.disclosure_date else None
        label = f"{t.type} {t.transaction_date}" + (f", disclosed {t.disclosure_date} ({lag} d later)" if lag is not
                                                     None else ", disclosure date unknown")
        point = {"value": [t.transaction_date.isoformat(), y], "name": label}
        if t.type == "purchase":
            buys.append(point)
        elif t.type.startswith("sale"):
            sells.append(point)
        else:
            continue
        if t.disclosure_date:
            disclosed.append({"value": [t.disclosure_date.isoformat(), y], "name": f"disclosed {lag} d after the trade"})
    option = charts.timeline([{"name": f"{closes.symbol} close", "x": days, "y": closes.close}], y_name="close")
    option["yAxis"].update(scale=True, minInterval=None)
    option["series"][0].update(areaStyle=None, lineStyle={"width": 1.5, "color": "#6e7781"},
                               itemStyle={"color": "#6e7781"})
    option["tooltip"] = {"trigger": "item", "confine": True}
    option["legend"]["data"] = [f"{closes.symbol} close", "buy", "sell", "disclosed"]
    option["series"] += [
        {"name": "buy", "type": "scatter", "symbol": "triangle", "symbolSize": 13, "data": buys,
         "itemStyle": {"color": "#1a7f37"}, "z": 3},
        {"name": "sell", "type": "scatter", "symbol": "triangle", "symbolRotate": 180, "symbolSize": 13,
         "data": sells, "itemStyle": {"color": "#cf222e"}, "z": 3},
        {"name": "disclosed", "type": "scatter", "symbol": "emptyCircle", "symbolSize": 8, "data": disclosed,
         "itemStyle": {"color": "#8250df"}, "z": 2}]
    return option


def network(pairs: list, focus: str | None = None) -> dict | None:
    """The co-trading graph of pair findings: members as nodes (sized by links), pairs as weighted edges."""
    rows = [_d(p) for p in pairs]
    if not rows:
        return None
    names, degree = {}, {}
    for r in rows:
        for m, n in zip(r["members"], r["member_names"]):
            names[m] = n or m[:8]
            degree[m] = degree.get(m, 0) + 1
    nodes = [{"id": m, "name": names[m], "value": degree[m], "symbolSize": 8 + 4 * min(degree[m], 8),
              "itemStyle": {"color": "#cf222e" if m == focus else "#1f6feb"},
              "label": {"show": degree[m] >= 2 or m == focus}} for m in names]
    links = [{"source": r["members"][0], "target": r["members"][1], "value": r["evidence"].get("weight"),
              "lineStyle": {"width": 1 + 3 * r["strength"]}} for r in rows if len(r["members"]) == 2]
    return {"tooltip": {"confine": True}, "animation": False,
            "series": [{"type": "graph", "layout": "force", "roam": True, "data": nodes, "links": links,
                        "force": {"repulsion": 120, "edgeLength": [40, 110], "gravity": 0.12,
                                  "layoutAnimation": False},
                        "label": {"position": "right", "fontSize": 11}, "lineStyle": {"color": "#8c959f",
                                                                                      "opacity": 0.7},
                        "emphasis": {"focus": "adjacency"}}]}
