"""Dashboard sessions: log in with an API key, carry a signed cookie, check CSRF on every form.

The cookie (``qp_session``, ``HttpOnly``, ``SameSite=Strict``, ``Secure`` over https)
holds the key's public id, the login time and a random nonce, signed with HMAC-SHA256
under ``QUANTPIPE_DASHBOARD_SECRET`` (or a secret generated once in QUANTPIPE_HOME, so
every API process of one home agrees). It never holds the key. Every request looks the
key up in PostgreSQL (as the API does), so revoking the key ends its sessions at once,
and the scopes always come from the database, not the cookie.

Logout clears the cookie and puts its nonce on a deny list in Redis until it would
have expired. Redis is only asked to *refuse* a cookie: if Redis is down a signed,
unexpired cookie of a live key still works (the operator must be able to see that
Redis is down), so a logged-out cookie replayed during a Redis outage is the one gap.

CSRF: each session's token is HMAC(secret, nonce); forms carry it as ``csrf_token`` and
htmx requests as ``X-CSRF-Token``. The login form, before a session exists, uses a
double-submit cookie. ``SameSite=Strict`` is a second line, not the only one.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request

from shared_models.home_secrets import home_secret
from shared_models.settings import get_settings

from ..auth import Principal
from ..db import unit_of_work
from .. import keys

COOKIE = "qp_session"
LOGIN_COOKIE = "qp_login_csrf"
DENY_PREFIX = "quantpipe:dashboard:logout:"


class NotLoggedIn(Exception):
    """No valid session: the page handler redirects to the login page."""


class Forbidden(Exception):
    """The session's key lacks the scope a page or action needs."""

    def __init__(self, scope: str):
        super().__init__(scope)
        self.scope = scope


@dataclass(frozen=True)
class Viewer:
    principal: Principal
    nonce: str
    csrf: str

    @property
    def is_admin(self) -> bool:
        return keys.allows(self.principal.scopes, "admin")


@functools.lru_cache(maxsize=1)
def secret() -> bytes:
    configured = get_settings().api.dashboard_secret
    if configured:
        return configured.encode()
    return home_secret(Path(get_settings().home).resolve() / "dashboard_secret",
                       lambda: secrets.token_urlsafe(48).encode(), "QUANTPIPE_DASHBOARD_SECRET")


def _sign(payload: bytes) -> str:
    return base64.urlsafe_b64encode(hmac.new(secret(), payload, hashlib.sha256).digest()).decode().rstrip("=")


def csrf_for(nonce: str) -> str:
    return _sign(b"csrf|" + nonce.encode())


def issue(key_id: str) -> tuple[str, str]:
    """(cookie value, nonce) of a new session of ``key_id``."""
    nonce = secrets.token_urlsafe(16)
    body = base64.urlsafe_b64encode(json.dumps({"k": key_id, "t": int(time.time()), "n": nonce},
                                               separators=(",", ":")).encode()).decode().rstrip("=")
    return f"{body}.{_sign(body.encode())}", nonce


def lifetime() -> int:
    return int(get_settings().api.dashboard_session_hours * 3600)


def decode(value: str | None) -> dict | None:
    """The cookie's claims when the signature holds and it has not expired, else None."""
    if not value or value.count(".") != 1 or len(value) > 512:
        return None
    body, sig = value.split(".")
    if not hmac.compare_digest(sig, _sign(body.encode())):
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except ValueError:
        return None
    if not isinstance(claims, dict) or not isinstance(claims.get("t"), int) or time.time() - claims["t"] > lifetime():
        return None
    return claims


def _redis():
    from ..health import _redis as client

    return client()


def _denied(nonce: str) -> bool:
    try:
        return bool(_redis().exists(DENY_PREFIX + nonce))
    except Exception:  # noqa: BLE001 - see the module docstring: Redis may only refuse, never admit
        return False


def deny(claims: dict) -> None:
    remaining = max(1, lifetime() - (int(time.time()) - claims["t"]))
    try:
        _redis().set(DENY_PREFIX + claims["n"], b"1", ex=remaining)
    except Exception:  # noqa: BLE001 - the cookie is cleared anyway
        pass


def principal_of(key_id: str) -> Principal | None:
    """The live key with this public id (None when unknown or revoked)."""
    from sqlalchemy import select

    from shared_models.models.api import ApiKey

    with unit_of_work() as session:
        row = session.scalar(select(ApiKey).where(ApiKey.key_id == key_id))
        if row is None or row.revoked_at is not None:
            return None
        keys.touch(session, row)
        return Principal(row.key_id, row.name, tuple(row.scopes))


def viewer(request: Request) -> Viewer:
    """The logged-in viewer (any live key with ``read``), or NotLoggedIn."""
    claims = decode(request.cookies.get(COOKIE))
    if claims is None or not isinstance(claims.get("k"), str) or _denied(str(claims.get("n"))):
        raise NotLoggedIn()
    principal = principal_of(claims["k"])
    if principal is None:
        raise NotLoggedIn()
    if not keys.allows(principal.scopes, "read"):
        raise Forbidden("read")
    v = Viewer(principal, claims["n"], csrf_for(claims["n"]))
    request.state.principal = principal
    return v


def admin(request: Request) -> Viewer:
    v = viewer(request)
    if not v.is_admin:
        raise Forbidden("admin")
    return v


def check_csrf(v: Viewer, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(str(presented), v.csrf)


def login_key(presented: str) -> Principal | None:
    """The key a login form presented, when it is live and holds ``read``."""
    with unit_of_work() as session:
        row = keys.verify(session, (presented or "").strip())
        if row is None or not keys.allows(tuple(row.scopes), "read"):
            return None
        keys.touch(session, row)
        return Principal(row.key_id, row.name, tuple(row.scopes))


def cookie_args(request: Request) -> dict:
    return {"httponly": True, "samesite": "strict", "secure": request.url.scheme == "https", "path": "/"}
