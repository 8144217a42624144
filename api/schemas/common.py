"""The seed-004 envelope (``{"status": "success", "data": …}``) used by every non-seed-002 route."""

from __future__ import annotations

from typing import Generic, Literal, TypeVar

from pydantic import BaseModel

from ..http import PageInfo

T = TypeVar("T")


class Envelope(BaseModel, Generic[T]):
    status: Literal["success"] = "success"
    data: T


class PagedEnvelope(BaseModel, Generic[T]):
    status: Literal["success"] = "success"
    data: list[T]
    page: PageInfo
