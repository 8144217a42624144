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

from ..auth import ADMIN, TRACK
from ..errors import ApiError, responses
from ..schemas.activity import (Accepted, Confirmed, Erased, EventBatch, EventIn, LoginConfirm, LoginVerify, Profile,
                                TrustResult, Usage)
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


@router.get("/admin/usage", response_model=Envelope[Usage], dependencies=[ADMIN])
def usage(top: int = Query(10, ge=1, le=100, description="Top users / entities to list")):
    """The seed's monitoring page: users, events, events per user, top users and entities, licence, cache."""
    return Envelope[Usage](data=run(client().stats, top))
