"""The caller's own key (any scope): lets a client check its key and scopes."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ..auth import authenticate_async, bearer, header
from ..errors import responses
from ..schemas.operations import Me

router = APIRouter(prefix="/api/v1/auth", tags=["operations"])


@router.get("/me", response_model=Me, responses=responses(401))
async def me(credentials=Depends(bearer), x_api_key: str | None = Depends(header)) -> Me:
    """The key's public id, name and scopes (401 when missing, unknown or revoked)."""
    p = await authenticate_async(credentials, x_api_key)
    return Me(key_id=p.key_id, name=p.name, scopes=list(p.scopes))
