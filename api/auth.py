"""Authentication by API key (``Authorization: Bearer <key>`` or ``X-API-Key``) and scope checks.

``require("read")`` is a dependency: 401 without a key or with an unknown/revoked
one, 403 when the key lacks the scope (``admin`` holds every scope). The key is
looked up on every request (one indexed row), so a revocation takes effect at once
in every API process.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from . import keys
from .db import unit_of_work
from .errors import ApiError

bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")
header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key in X-API-Key")
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="quantpipe"'}


@dataclass(frozen=True)
class Principal:
    key_id: str
    name: str
    scopes: tuple[str, ...]

    @property
    def actor(self) -> str:
        """Who did it, as recorded in histories (promotions, rollbacks)."""
        return f"api:{self.name}"


def authenticate(credentials: HTTPAuthorizationCredentials | None, x_api_key: str | None) -> Principal:
    presented = x_api_key or (credentials.credentials if credentials is not None else None)
    if not presented:
        raise ApiError(401, "authentication required: send `Authorization: Bearer <key>` or `X-API-Key: <key>` "
                            "(create one with `quantpipe api-key create`)", headers=CHALLENGE)
    with unit_of_work() as session:
        row = keys.verify(session, presented.strip())
        if row is None:
            raise ApiError(401, "invalid or revoked API key", headers=CHALLENGE)
        keys.touch(session, row)
        return Principal(row.key_id, row.name, tuple(row.scopes))


def require(scope: str):
    """Dependency factory: the request's Principal, holding ``scope``."""

    def dependency(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
                   x_api_key: str | None = Depends(header)) -> Principal:
        principal = authenticate(credentials, x_api_key)
        if not keys.allows(principal.scopes, scope):
            raise ApiError(403, f"this key ({principal.key_id}, scopes {', '.join(principal.scopes)}) "
                                f"lacks the {scope!r} scope")
        request.state.principal = principal
        return principal

    dependency.__name__ = f"require_{scope}"
    return dependency


READ, TRACK, ADMIN = (Depends(require(s)) for s in ("read", "track", "admin"))
