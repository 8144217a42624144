"""Activity: events/s, most tracked entities, top users (pseudonymous), trust scores and step-ups, licence, cache.

The handlers of ``GET /api/v1/admin/usage`` and ``/api/v1/admin/activity``. User ids are shown as
keyed pseudonyms (``u-…``, HMAC under the dashboard secret): an operator can follow one user across
the page without the page showing who it is.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta, timezone

from fastapi import APIRouter, Depends, Query, Request

from ...routers import activity as api
from .. import charts
from ..render import page
from ..session import Viewer, secret, viewer

router = APIRouter(prefix="/dashboard", include_in_schema=False)


def pseudonym(user_id) -> str:
    return "u-" + hmac.new(secret(), f"user|{user_id}".encode(), hashlib.sha256).hexdigest()[:10]


@router.get("/activity")
def activity_page(request: Request, v: Viewer = Depends(viewer), minutes: int = Query(60, ge=1, le=7 * 24 * 60)):
    usage = api.usage(top=10).data
    act = api.activity(minutes=minutes, recent=20).data
    now = datetime.now(timezone.utc)
    per_min = charts.timeline([{"name": "events", "x": [r["minute"] for r in act.events_per_minute],
                                "y": [r["events"] for r in act.events_per_minute]}], y_name="events / minute",
                             kind="bar", x_range=[(now - timedelta(minutes=minutes)).isoformat(), now.isoformat()])
    trust = charts.histogram(act.trust_histogram["edges"], act.trust_histogram["counts"], x_name="trust score",
                             )
    trust["series"][0]["data"] = [{"value": n, "itemStyle": {"color": "#cf222e" if i < 5 else "#1a7f37"}}
                                  for i, n in enumerate(act.trust_histogram["counts"])]
    ents = usage.top_entities
    entities = charts.bars([e["entity_id"] for e in ents], {"events": [e["events"] for e in ents]},
                           y_name="events", horizontal=True)
    lic = usage.license
    used, limit = lic.get("used"), lic.get("limit")
    return page(request, "activity.html", viewer=v, active="activity", u=usage, a=act, minutes=minutes,
                per_min=per_min, trust=trust, entities=entities, lic=lic, used=used, limit=limit,
                share=(used / limit) if used is not None and limit else None, pseudonym=pseudonym,
                ent_height=max(220, 26 * len(ents) + 70))
