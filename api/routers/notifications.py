"""Notification admin routes (scope ``admin``) and the per-user pattern alerts (scope ``track``).

Thin over the notify pool's ``subscriptions`` functions, as the API role: it stores a new
subscription's secret (encrypted) and returns it once, and can never read one back.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Path, Query

from ..auth import ADMIN, TRACK, Principal, require
from ..db import read_session, unit_of_work
from ..errors import ApiError, responses
from ..http import Page, page, page_info
from ..schemas.common import Envelope, PagedEnvelope
from ..schemas.notifications import (Created, DeliveryDetail, DeliveryOut, Removed, Status, Subscription,
                                     SubscriptionIn, UserAlert)

router = APIRouter(prefix="/api/v1", tags=["notifications"], responses=responses(401, 403, 422, 503))
SUB_ID = Path(ge=1, le=2**62, description="Subscription id")


def _call(fn, *args, **kwargs):
    from workers.notifications.subscriptions import SubscriptionError

    try:
        with unit_of_work() as session:
            return fn(session, *args, **kwargs)
    except SubscriptionError as exc:
        raise ApiError(404 if "no subscription" in str(exc) or "no delivery" in str(exc) else 422, str(exc),
                       exc.field) from None


@router.get("/notifications/subscriptions", response_model=Envelope[list[Subscription]], dependencies=[ADMIN])
def list_subscriptions(include_removed: bool = Query(False, description="Also list removed subscriptions")):
    """Subscriptions (never their secrets)."""
    from workers.notifications import subscriptions

    return Envelope[list[Subscription]](data=_call(subscriptions.list_subscriptions, include_removed=include_removed))


@router.post("/notifications/subscriptions", status_code=201, response_model=Envelope[Created])
def add_subscription(body: SubscriptionIn, who: Principal = Depends(require("admin"))):
    """Subscribe a URL or address to events; the response holds the signing secret, shown only this once."""
    from workers.notifications import subscriptions

    sub, secret = _call(subscriptions.add, body.url, body.events, fmt=body.format, min_priority=body.min_priority,
                        name=body.name, created_by=who.actor)
    return Envelope[Created](data=Created(subscription=sub, secret=secret))


@router.delete("/notifications/subscriptions/{subscription_id}", response_model=Envelope[Removed],
               dependencies=[ADMIN], responses=responses(404))
def remove_subscription(subscription_id: int = SUB_ID):
    """Stop sending to it (history kept, unsent deliveries cancelled)."""
    from workers.notifications import subscriptions

    return Envelope[Removed](data=_call(subscriptions.remove, subscription_id))


@router.post("/notifications/subscriptions/{subscription_id}/test", response_model=Envelope[DeliveryDetail],
             responses=responses(404))
def test_subscription(subscription_id: int = SUB_ID,
                      wait: float = Query(10.0, ge=0, le=30, description="Seconds to wait for the delivery"),
                      who: Principal = Depends(require("admin"))):
    """Send a signed test alert through the outbox and the notify worker; returns the delivery (and its
    attempts) once delivered, dead, or ``wait`` seconds passed (status ``pending`` then)."""
    from workers.notifications import subscriptions

    d = _call(subscriptions.test, subscription_id, who.actor)
    subscriptions.kick()
    deadline = time.monotonic() + wait
    while d["status"] not in ("delivered", "dead", "cancelled") and time.monotonic() < deadline:
        time.sleep(0.2)
        d = _call(subscriptions.delivery, d["id"])
    return Envelope[DeliveryDetail](data=d)


@router.get("/notifications/deliveries", response_model=PagedEnvelope[DeliveryOut], dependencies=[ADMIN])
def deliveries(p: Page = Depends(page(50)), subscription_id: int | None = Query(None, ge=1, le=2**62),
               event: str | None = Query(None, min_length=1, max_length=40, pattern=r"^[a-z_]+\.[a-z_]+$"),
               status: Status | None = None):
    """Delivery history, newest first."""
    from workers.notifications import subscriptions

    rows = _call(subscriptions.history, subscription_id=subscription_id, event=event, status=status,
                 limit=p.limit + 1, offset=p.offset)
    return PagedEnvelope[DeliveryOut](data=rows[:p.limit], page=page_info(p, min(len(rows), p.limit),
                                                                          len(rows) > p.limit))


@router.get("/notifications/deliveries/{delivery_id}", response_model=Envelope[DeliveryDetail],
            dependencies=[ADMIN], responses=responses(404))
def delivery(delivery_id: int = Path(ge=1, le=2**62)):
    """One delivery with every attempt (status, error, duration)."""
    from workers.notifications import subscriptions

    return Envelope[DeliveryDetail](data=_call(subscriptions.delivery, delivery_id))


@router.get("/users/{user_id}/alerts", response_model=PagedEnvelope[UserAlert], dependencies=[TRACK])
def user_alerts(user_id: str = Path(min_length=1, max_length=128, description="The app's user id"),
                p: Page = Depends(page(50))):
    """Patterns published on the symbols in this user's library (pinned, or interest above
    QUANTPIPE_NOTIFY_ALERT_MIN_SCORE), newest first, each with why the user gets it."""
    from shared_models.notifications import user_alerts as read
    from shared_models.settings import get_settings
    from workers.ingestion.events import EventValidationError, check_user_id

    from .activity import user_id_of

    try:
        uid = check_user_id(user_id_of(user_id))
    except EventValidationError as exc:
        raise ApiError(422, str(exc), "user_id") from None
    with read_session() as session:
        rows = read(session, uid, limit=p.limit + 1, offset=p.offset,
                    min_score=get_settings().notify.alert_min_score)
    return PagedEnvelope[UserAlert](data=rows[:p.limit], page=page_info(p, min(len(rows), p.limit),
                                                                        len(rows) > p.limit))
