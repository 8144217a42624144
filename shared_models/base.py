"""Declarative base with a constraint naming convention, so Alembic migrations name
constraints deterministically and `downgrade` can drop them by name."""

from __future__ import annotations

from typing import Any

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# What a JSONB column can hold when it is not always an object (dead letters keep any input).
JSONValue = dict[str, Any] | list[Any] | str | int | float | bool


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
