"""ECharts options (plain JSON) for every picture the dashboard draws.

Options carry data already rounded and scaled for reading (percent as 12.3, not
0.123), so no formatter functions have to travel to the browser.
"""

from __future__ import annotations

from typing import Any, Sequence

PALETTE = ["#1f6feb", "#d4a72c", "#8250df", "#1a7f37", "#cf222e", "#0a7ea4", "#bf3989", "#6e7781"]
# containLabel: the grid makes room for its axis labels (with a fixed 56 px left margin a y axis of
# "30,000 %" was cut at the chart's edge)
GRID = {"left": 16, "right": 24, "top": 56, "bottom": 40, "containLabel": True}


def _base(**kw) -> dict:
    option = {"color": PALETTE, "grid": dict(GRID), "tooltip": {"trigger": "axis", "confine": True},
              "textStyle": {"fontFamily": "system-ui, sans-serif"}}
    option.update(kw)
    return option


def _legend(names: Sequence[str]) -> dict:
    return {"type": "scroll", "top": 0, "data": list(names)}


def lines(series: Sequence[dict], *, x_name: str, y_name: str, y_suffix: str = "", x_type: str = "value",
          mark_y: Sequence[tuple[str, float]] = ()) -> dict:
    """Several lines over a shared x; each item: {name, x: [...], y: [...]} (x numbers or ISO dates)."""
    out = []
    for i, s in enumerate(series):
        line = {"name": s["name"], "type": "line", "showSymbol": len(s["x"]) < 60, "symbolSize": 5,
                "data": [[x, y] for x, y in zip(s["x"], s["y"])], "lineStyle": {"width": 2}}
        if i == 0 and mark_y:
            line["markLine"] = {"symbol": "none", "silent": True, "data": [
                {"yAxis": v, "name": label, "label": {"formatter": label, "position": "insideEndTop"},
                 "lineStyle": {"type": "dashed", "color": "#6e7781"}} for label, v in mark_y]}
        out.append(line)
    return _base(legend=_legend([s["name"] for s in series]),
                 xAxis={"type": x_type, "name": x_name, "nameLocation": "middle", "nameGap": 26,
                        "scale": x_type == "value"},
                 yAxis={"type": "value", "name": y_name, "scale": True,
                        "axisLabel": {"formatter": "{value}" + y_suffix}},
                 series=out)


def sequential(looks: Sequence[dict]) -> dict:
    """The promotion boundary at every planned look and the Welch z at every evaluated one."""
    bound = [[lk["n_trades"], lk["boundary"]] for lk in looks]
    colour = {"APPROVED": "#1a7f37", "REJECTED": "#cf222e", "PENDING": "#d4a72c"}
    z = [{"value": [lk["n_trades"], lk["z"]], "itemStyle": {"color": colour.get(lk["decision"] or "", "#1f6feb")}}
         for lk in looks if lk["z"] is not None]
    lower = [[lk["n_trades"], -lk["boundary"]] for lk in looks]
    return _base(legend=_legend(["promotion boundary", "Welch z at each look", "harm boundary"]),
                 xAxis={"type": "value", "name": "trades", "nameLocation": "middle", "nameGap": 26, "scale": True},
                 yAxis={"type": "value", "name": "z"},
                 series=[{"name": "promotion boundary", "type": "line", "step": False, "showSymbol": False,
                          "data": bound, "lineStyle": {"width": 2, "color": "#1a7f37"}, "itemStyle": {"color": "#1a7f37"},
                          "areaStyle": {"opacity": 0}},
                         {"name": "Welch z at each look", "type": "line", "data": z, "symbolSize": 9,
                          "lineStyle": {"width": 1.5, "color": "#1f6feb"}, "itemStyle": {"color": "#1f6feb"}},
                         {"name": "harm boundary", "type": "line", "showSymbol": False, "data": lower,
                          "lineStyle": {"width": 1.5, "type": "dashed", "color": "#cf222e"},
                          "itemStyle": {"color": "#cf222e"}}])


def bars(categories: Sequence[str], groups: dict[str, Sequence[float]], *, y_name: str, horizontal: bool = False,
         stack: bool = True) -> dict:
    """Grouped or stacked bars: one series per group, one bar per category."""
    cat_axis = {"type": "category", "data": list(categories), "axisLabel": {"interval": 0, "hideOverlap": True}}
    val_axis = {"type": "value", "name": y_name}
    option = _base(legend=_legend(list(groups)), tooltip={"trigger": "axis", "axisPointer": {"type": "shadow"},
                                                           "confine": True},
                   series=[{"name": g, "type": "bar", "stack": "all" if stack else None, "data": list(v),
                            "barMaxWidth": 28} for g, v in groups.items()])
    if horizontal:
        option.update(xAxis={"type": "value"}, yAxis={**cat_axis, "inverse": True})
        option["grid"] = {**GRID, "left": 8}
    else:
        option.update(xAxis=cat_axis, yAxis=val_axis)
    return option


def histogram(edges: Sequence[float], counts: Sequence[int], *, x_name: str, unit: str = "",
              marks: Sequence[tuple[str, float]] = ()) -> dict:
    """Bars over bins [edges[i], edges[i+1]) (one count more than edges: the last bin is open), with
    optional vertical marks (percentiles, thresholds)."""
    labels = [f"{_short(edges[i])}–{_short(edges[i + 1])}{unit}" if i + 1 < len(edges) else f"≥ {_short(edges[i])}{unit}"
              for i in range(len(counts))]
    series = {"name": "count", "type": "bar", "data": list(counts), "barCategoryGap": "8%",
              "itemStyle": {"color": PALETTE[0]}}
    if marks:
        series["markLine"] = {"symbol": "none", "silent": True, "data": [
            {"xAxis": _bin_of(edges, v), "name": label, "label": {"formatter": label},
             "lineStyle": {"type": "dashed", "color": "#cf222e"}} for label, v in marks if v is not None],
            "label": {"position": "end", "rotate": 0}}
    return _base(tooltip={"trigger": "axis", "axisPointer": {"type": "shadow"}, "confine": True},
                 xAxis={"type": "category", "data": labels, "name": x_name, "nameLocation": "middle",
                        "nameGap": 26, "axisLabel": {"hideOverlap": True}},
                 yAxis={"type": "value", "name": "count", "minInterval": 1}, series=[series])


def _bin_of(edges: Sequence[float], v: float) -> int:
    for i in range(len(edges) - 1):
        if v < edges[i + 1]:
            return i
    return len(edges) - 1


def _short(v: float) -> str:
    v = float(v)
    if abs(v) >= 1000:
        return f"{v / 1000:,.1f}k".replace(".0k", "k")
    return f"{v:g}" if abs(v) >= 1 or v == 0 else f"{v:.2g}"


def timeline(series: Sequence[dict], *, y_name: str, kind: str = "line", x_range: Sequence[str] | None = None
             ) -> dict:
    """Time on x (ISO strings); each item {name, x, y}. ``x_range`` (start, end) pins the axis to a
    window: left to itself, ECharts pads a few points with hours on both sides, into the future."""
    # a day's tick says which day ('Dec 4'): ECharts' own '{d}' showed a bare '4' between the hours
    x_axis = ({"type": "time", "axisLabel": {"formatter": {"day": "{MMM} {d}"}, "hideOverlap": True}}
              | ({"min": x_range[0], "max": x_range[1]} if x_range else {}))
    return _base(legend=_legend([s["name"] for s in series]),
                 xAxis=x_axis, yAxis={"type": "value", "name": y_name, "minInterval": 1},
                 series=[{"name": s["name"], "type": kind, "showSymbol": len(s["x"]) < 30, "barMaxWidth": 24,
                          "data": [[x, y] for x, y in zip(s["x"], s["y"])]} for s in series])


def merge(option: dict, **extra: Any) -> dict:
    option.update(extra)
    return option
