"""Login verification against the user's history, and learning from confirmed logins.

A request is reduced (``reduce_context``) before anything is stored: the IP becomes a keyed
HMAC plus its network prefix, the device id a keyed HMAC, the user agent family/OS. Only a
login the application confirms as successful teaches the known signals.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from sqlalchemy import DateTime, Engine, delete, func, insert, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from shared_models.models.ingest import KnownSignal, LoginAttempt

from . import privacy, store, trust
from .events import EventValidationError


def reduce_context(hasher: privacy.Hasher, ctx: Mapping[str, Any] | None) -> trust.LoginContext:
    ctx = dict(ctx or {})
    ip = ctx.get("ip_address")
    ip_hmac = network = None
    if ip:
        try:
            ip_hmac, network = hasher.ip(str(ip)), privacy.network_prefix(str(ip))
        except ValueError:
            raise EventValidationError("request_context.ip_address", "is not an IP address") from None
    device = ctx.get("device_fingerprint")
    if device is not None and (not isinstance(device, str) or not 0 < len(device) <= 512):
        raise EventValidationError("request_context.device_fingerprint", "must be a string of 1-512 characters")
    family, os_name = privacy.reduce_user_agent(ctx.get("user_agent"))
    at = _login_time(ctx.get("timestamp"))
    hour = (at or datetime.now(timezone.utc)).hour
    return trust.LoginContext(ip_hmac=ip_hmac, network=network,
                              device_hash=hasher.device(device) if device else None,
                              ua_family=family, ua_os=os_name, hour=hour, at=at)


def _login_time(when: Any) -> datetime | None:
    """The caller's login time (replays, simulations), UTC; None: now, on the database's clock."""
    if when is None:
        return None
    try:
        at = when if isinstance(when, datetime) else datetime.fromtimestamp(float(when), tz=timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        raise EventValidationError("request_context.timestamp", "must be epoch seconds or an aware datetime") \
            from None
    if at.tzinfo is None:
        raise EventValidationError("request_context.timestamp", "datetime must be timezone-aware")
    if at.timestamp() > time.time() + 300:
        raise EventValidationError("request_context.timestamp", "is in the future")
    return at.astimezone(timezone.utc)


def load_history(conn, user_id: str, ctx: trust.LoginContext | None = None) -> trust.LoginHistory:
    """Known signals of the user, and what happened just before this login (its time, or now)."""
    h = trust.LoginHistory()
    rows = conn.execute(select(KnownSignal.kind, KnownSignal.value, KnownSignal.count)
                        .where(KnownSignal.user_id == user_id))
    for kind, value, count in rows:
        if kind == "device":
            h.devices.add(value)
        elif kind == "network":
            h.networks.add(value)
        elif kind == "ua":
            h.user_agents.add(value)
        elif kind == "hour":
            h.hours[int(value)] = count
        elif kind == "top_entity":
            h.last_top_entities.add(value)
    now = func.now() if ctx is None or ctx.at is None else literal(ctx.at, DateTime(timezone=True))
    recent = LoginAttempt.created_at
    row = conn.execute(select(
        func.count().filter(LoginAttempt.success.is_(False),
                            recent > now - timedelta(minutes=trust.FAILURE_WINDOW_MIN)),
        func.count().filter(recent > now - timedelta(minutes=trust.VELOCITY_WINDOW_MIN)),
        func.array_remove(func.array_agg(LoginAttempt.network.distinct()), None),
    ).where(LoginAttempt.user_id == user_id, recent > now - timedelta(hours=1), recent <= now)).one()
    h.recent_failures, h.recent_attempts, h.recent_networks = int(row[0]), int(row[1]), set(row[2] or [])
    if ctx is not None and ctx.network:  # credential stuffing: this network failing for other users
        h.network_failed_users = int(conn.execute(
            select(func.count(LoginAttempt.user_id.distinct())).where(
                LoginAttempt.network == ctx.network, LoginAttempt.success.is_(False),
                LoginAttempt.user_id != user_id,
                recent > now - timedelta(minutes=trust.STUFFING_WINDOW_MIN), recent <= now)).scalar_one())
    return h


def verify(engine: Engine, user_id: str, ctx: trust.LoginContext, current_top: set[str]) -> dict:
    """Score the login (``ctx`` from reduce_context), record the attempt; ``confirm`` records the outcome."""
    attempt_id = uuid.uuid4()
    with engine.begin() as conn:
        store.lock_for_writing(conn)  # an erasure in progress waits for this, then deletes it
        h = load_history(conn, user_id, ctx)
        h.current_top_entities = current_top
        result = trust.score_login(ctx, h)
        values = dict(attempt_id=attempt_id, user_id=user_id, ip_hmac=ctx.ip_hmac, network=ctx.network,
                      device_hash=ctx.device_hash, ua_family=ctx.ua_family, ua_os=ctx.ua_os, hour=ctx.hour,
                      fingerprint=None, trust_score=result["trust_score"], action=result["action"])
        if ctx.at is not None:
            values["created_at"] = ctx.at
        conn.execute(insert(LoginAttempt).values(**values))
    return {"user_id": user_id, "attempt_id": str(attempt_id), **result}


def parse_attempt_id(attempt_id: Any) -> uuid.UUID:
    try:
        return uuid.UUID(str(attempt_id))
    except ValueError:
        raise EventValidationError("attempt_id", "is not a UUID") from None


def confirm(engine: Engine, user_id: str, aid: uuid.UUID, success: bool, top: list[str]) -> dict:
    """Record the outcome once; a success teaches hour, device, network, user agent and top entities."""
    with engine.begin() as conn:
        store.lock_for_writing(conn)  # an erasure in progress waits for this, then deletes it
        row = conn.execute(
            update(LoginAttempt)
            .where(LoginAttempt.attempt_id == aid, LoginAttempt.user_id == user_id, LoginAttempt.success.is_(None))
            .values(success=bool(success), confirmed_at=func.now())
            .returning(LoginAttempt.device_hash, LoginAttempt.network, LoginAttempt.ua_family, LoginAttempt.ua_os,
                       LoginAttempt.hour)).one_or_none()
        if row is None:
            exists = conn.execute(select(LoginAttempt.success).where(
                LoginAttempt.attempt_id == aid, LoginAttempt.user_id == user_id)).one_or_none()
            if exists is None:
                raise EventValidationError("attempt_id", f"no login attempt {aid} for user {user_id}")
            return {"attempt_id": str(aid), "success": exists[0], "already_confirmed": True}
        if success:
            _learn(conn, user_id, row, top)
    return {"attempt_id": str(aid), "success": bool(success), "already_confirmed": False}


def _learn(conn, user_id: str, row, top: list[str]) -> None:
    signals = [("hour", str(row.hour))]
    signals += [(k, v) for k, v in (("device", row.device_hash), ("network", row.network),
                                    ("ua", f"{row.ua_family}|{row.ua_os}" if row.ua_family else None)) if v]
    stmt = pg_insert(KnownSignal).values(
        [{"user_id": user_id, "kind": k, "value": v, "count": 1, "first_seen": func.now(), "last_seen": func.now()}
         for k, v in signals])
    conn.execute(stmt.on_conflict_do_update(
        index_elements=[KnownSignal.user_id, KnownSignal.kind, KnownSignal.value],
        set_={"count": KnownSignal.count + 1, "last_seen": func.now()}))
    conn.execute(delete(KnownSignal).where(KnownSignal.user_id == user_id, KnownSignal.kind == "top_entity"))
    if top:
        conn.execute(insert(KnownSignal).values(
            [{"user_id": user_id, "kind": "top_entity", "value": e, "count": 1, "first_seen": func.now(),
              "last_seen": func.now()} for e in top]))
