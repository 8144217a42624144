"""Seed 000's Shadow Watch calls over HTTP, through the same client Python apps use.

Every call goes through ``shadowwatch.ShadowWatchSync`` (built once per process on
the API role's URL): ``POST /events`` is ``track``/``track_many`` (same validation,
``event_id`` idempotency), the rest are ``get_profile``, ``verify_login``,
``confirm_login``, ``delete_user`` and ``stats``. Scope ``track`` (an app's key);
the usage page needs ``admin``.
"""

from __future__ import annotations

import functools
import re

from fastapi import APIRouter, Body, Path, Query

from ..auth import READ, TRACK
from ..errors import ApiError, responses
from ..schemas.activity import (Accepted, Activity, Confirmed, Erased, EventBatch, EventIn, LoginConfirm, LoginVerify,
                                Profile, StepUp, TrustResult, Usage)
from ..schemas.common import Envelope

router = APIRouter(prefix="/api/v1", tags=["activity"], responses=responses(401, 403, 422, 503))
USER_ID = Path(min_length=1, max_length=128, description="The app's user id")
NUMERIC = re.compile(r"^[0-9]{1,19}$")


@functools.lru_cache(maxsize=1)
def client():
    from shadowwatch import ShadowWatchSync

    from ..db import api_database_url

    return ShadowWatchSync(database_url=api_database_url())


def user_id_of(raw: int | str) -> int | str:
    """Path and JSON ids: digits are the integer id, anything else is passed on for the pool to judge."""
    return int(raw) if isinstance(raw, str) and NUMERIC.match(raw) else raw


def run(fn, *args, **kwargs):
    """Call the client; its field-named errors become 422 (unknown attempt 404, event limit 429)."""
    from shadowwatch import EventValidationError, LicenseError

    try:
        return fn(*args, **kwargs)
    except EventValidationError as exc:
        status = 404 if exc.field == "attempt_id" and "no login attempt" in str(exc) else 422
        raise ApiError(status, str(exc), exc.field) from None
    except LicenseError as exc:
        if "limit reached" in str(exc):
            raise ApiError(429, str(exc), headers={"Retry-After": "3600"}) from None
        raise ApiError(503, f"the ingest licence is not usable: {exc}") from None


@router.post("/events", status_code=202, response_model=Envelope[Accepted], dependencies=[TRACK],
             responses=responses(429))
def track(body: EventIn | EventBatch = Body(description="One event, or {\"events\": [...]} (up to 5,000)")):
    """Track one event or a batch: validated like ``track()``, queued, stored by the ingest workers.

    A batch is all-or-nothing (nothing is queued if one event is invalid; the error names
    ``events[i].field``). Resending an ``event_id`` stores it once."""
    sw = client()
    if isinstance(body, EventIn):
        e = body.model_dump(exclude_none=True)
        e["user_id"] = user_id_of(e["user_id"])
        ids = [run(sw.track, **e)]
    else:
        events = [{**e.model_dump(exclude_none=True), "user_id": user_id_of(e.user_id)} for e in body.events]
        ids = run(sw.track_many, events)
    return Envelope[Accepted](data=Accepted(accepted=len(ids), event_ids=[str(i) for i in ids]))


@router.get("/profiles/{user_id}", response_model=Envelope[Profile], dependencies=[TRACK])
def profile(user_id: str = USER_ID):
    """The user's ranked interest library and behavioural fingerprint (empty library for a new user)."""
    return Envelope[Profile](data=run(client().get_profile, user_id_of(user_id)))


@router.post("/logins/verify", response_model=Envelope[TrustResult], dependencies=[TRACK])
def verify_login(body: LoginVerify):
    """Explainable trust score of a login; ``action`` is ``require_mfa`` (step up to 2FA) below 0.5."""
    ctx = body.request_context.model_dump(exclude_none=True) if body.request_context else None
    return Envelope[TrustResult](data=run(client().verify_login, user_id_of(body.user_id), ctx))


@router.post("/logins/confirm", response_model=Envelope[Confirmed], dependencies=[TRACK], responses=responses(404))
def confirm_login(body: LoginConfirm):
    """Report the outcome of a verified login (idempotent); only a success teaches the known device and network."""
    return Envelope[Confirmed](data=run(client().confirm_login, user_id_of(body.user_id), body.attempt_id,
                                        body.success))


@router.delete("/users/{user_id}", response_model=Envelope[Erased], dependencies=[TRACK])
def erase_user(user_id: str = USER_ID):
    """Right to erasure: every row and cache key of the user (idempotent; events still queued are skipped)."""
    uid = user_id_of(user_id)
    return Envelope[Erased](data=Erased(user_id=uid, deleted=run(client().delete_user, uid)))


@router.get("/admin/usage", response_model=Envelope[Usage], dependencies=[READ])
def usage(top: int = Query(10, ge=1, le=100, description="Top users / entities to list")):
    """The seed's monitoring page: users, events, events per user, top users and entities, licence, cache.

    Scope ``read``: aggregate figures for operators (the dashboard's Activity page shows them)."""
    return Envelope[Usage](data=run(client().stats, top))


PER_MINUTE = """
SELECT date_trunc('minute', ts) AS minute, count(*) FROM ingest_events
WHERE ts > now() - make_interval(mins => :minutes) GROUP BY 1 ORDER BY 1
"""
TRUST = """
SELECT least(width_bucket(trust_score, 0, 1, 10), 10) AS b, count(*) FROM ingest_login_attempts
WHERE created_at > now() - make_interval(mins => :minutes) GROUP BY 1
"""
STEP_UPS = """
SELECT attempt_id, user_id, created_at, trust_score, action, success FROM ingest_login_attempts
WHERE created_at > now() - make_interval(mins => :minutes) AND action IN ('require_mfa', 'block')
ORDER BY created_at DESC, attempt_id LIMIT :n
"""


@router.get("/admin/activity", response_model=Envelope[Activity], dependencies=[READ])
def activity(minutes: int = Query(60, ge=1, le=7 * 24 * 60, description="Window, minutes back from now"),
             recent: int = Query(20, ge=0, le=200, description="Recent step-ups to list")):
    """Events per second and per minute, trust-score distribution of logins and the recent step-ups to 2FA."""
    from sqlalchemy import text

    from ..db import engine

    with engine().connect() as conn:
        per_sec = conn.execute(text("SELECT count(*) FROM ingest_events WHERE ts > now() - interval '60 seconds'"
                                    )).scalar_one()
        minutes_rows = conn.execute(text(PER_MINUTE), {"minutes": minutes}).all()
        bins = dict(conn.execute(text(TRUST), {"minutes": minutes}).all())
        ups = conn.execute(text(STEP_UPS), {"minutes": minutes, "n": recent}).mappings().all() if recent else []
        n_up = conn.execute(text("SELECT count(*) FILTER (WHERE action IN ('require_mfa', 'block')), count(*) "
                                 "FROM ingest_login_attempts WHERE created_at > now() - make_interval(mins => :m)"),
                            {"m": minutes}).one()
    counts = [int(bins.get(i, 0)) for i in range(1, 11)]
    return Envelope[Activity](data=Activity(
        window_minutes=minutes, events_per_second=round(int(per_sec) / 60.0, 3),
        events_per_minute=[{"minute": m, "events": int(n)} for m, n in minutes_rows],
        logins=int(n_up[1]), step_ups=int(n_up[0]),
        trust_histogram={"edges": [round(i / 10, 1) for i in range(11)], "counts": counts},
        recent_step_ups=[StepUp(**{**r, "attempt_id": str(r["attempt_id"])}) for r in ups]))
