"""Templates and the filters that format numbers for people (thousands separators, %, ms, ages).

Every page is server-rendered with Jinja2; charts travel as an ECharts option (plain
JSON) inside the page and are drawn by ``static/app.js``. Nothing is fetched from
another host: the scripts are vendored under ``static/vendor``.
"""

from __future__ import annotations

import functools
import json
import math
from datetime import date, datetime, timezone
from importlib.resources import files
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

DASH = "—"
PAGES = [("overview", "Overview", "/dashboard"), ("discovery", "Discovery", "/dashboard/discovery"),
         ("patterns", "Patterns", "/dashboard/patterns"), ("shadow", "Shadow models", "/dashboard/shadow"),
         ("activity", "Activity", "/dashboard/activity")]
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and not math.isfinite(v))


def num(v: Any, digits: int = 0) -> str:
    """12345.6 → '12,346'; digits=2 → '12,345.60'; None → '—'."""
    if _missing(v):
        return DASH
    return f"{float(v):,.{digits}f}" if digits or isinstance(v, float) else f"{int(v):,}"


def pct(v: Any, digits: int = 1, signed: bool = False) -> str:
    """0.1234 → '12.3 %'. A fraction short of one never reads as 100 %: a 99.97 % drawdown is not a
    total loss, so it shows as '99.9 %' (and 0.99999 confidence as '99.9 %')."""
    if _missing(v):
        return DASH
    x = float(v) * 100
    if abs(x) < 100 and round(abs(x), digits) >= 100:
        x = math.copysign(100 - 10 ** -digits, x)
    return f"{x:{'+' if signed else ''},.{digits}f} %"


def ms(v: Any, digits: int = 0) -> str:
    if _missing(v):
        return DASH
    return f"{float(v):,.{digits}f} ms"


def age(seconds: Any) -> str:
    """Seconds as a person reads them: '0.8 s', '42 s', '3 min', '5.2 h', '3 d'."""
    if _missing(seconds):
        return "never"
    s = float(seconds)
    if s < 10:
        return f"{s:.1f} s"
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    if s < 172800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:,.0f} d"


def when(v: Any) -> str:
    if v is None:
        return DASH
    if isinstance(v, str):
        try:
            v = datetime.fromisoformat(v)
        except ValueError:
            return v
    if isinstance(v, datetime):
        if v.tzinfo is not None:
            v = v.astimezone(timezone.utc)
        return v.strftime("%Y-%m-%d %H:%M UTC") if (v.hour, v.minute, v.second) != (0, 0, 0) else v.strftime(
            "%Y-%m-%d")
    if isinstance(v, date):
        return v.isoformat()
    return str(v)


def short(v: Any) -> str:
    """A recent time, compactly: '12-01 16:13' (UTC)."""
    if isinstance(v, datetime):
        return (v.astimezone(timezone.utc) if v.tzinfo else v).strftime("%m-%d %H:%M")
    return when(v)


def _default(o: Any) -> Any:
    if isinstance(o, (datetime, date)):
        return o.isoformat()
    if hasattr(o, "item"):  # numpy scalars
        return o.item()
    return str(o)


def chart_json(option: dict) -> Markup:
    """The option as JSON safe inside <script type="application/json"> (no '</' can close it)."""
    text = json.dumps(option, default=_default, separators=(",", ":"), allow_nan=False)
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


@functools.lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(files("api.dashboard") / "templates")),
                      autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
    env.filters.update(num=num, pct=pct, ms=ms, age=age, when=when, short=short, chart_json=chart_json)
    env.globals.update(pages=PAGES)
    return env


def page(request: Request, template: str, *, viewer=None, status: int = 200, **context) -> HTMLResponse:
    """A full page (or an htmx fragment: templates named ``_*.html``), never cached, framed by nobody."""
    html = environment().get_template(template).render(request=request, viewer=viewer, **context)
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store", "Content-Security-Policy": CSP,
                                                           "X-Content-Type-Options": "nosniff",
                                                           "Referrer-Policy": "same-origin"})
