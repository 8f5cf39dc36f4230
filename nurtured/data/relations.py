"""Every table that holds rows about a lead, found by introspecting the Tortoise models:
tables added later (by anyone) come along in merge, export and erase without a change here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from tortoise import Tortoise
from tortoise.models import Model

from nurtured.db import APP
from nurtured.models import Lead


@dataclass(frozen=True)
class Relation:
    """``model`` rows point at a row of ``parent`` through the column ``column``."""

    model: type[Model]
    column: str  # e.g. "lead_id"
    field: str  # e.g. "lead"
    parent: type[Model]


def _references(target: type[Model]) -> list[Relation]:
    found = []
    for model in Tortoise.apps[APP].values():
        meta = model._meta
        for name in sorted(meta.fk_fields | meta.o2o_fields):
            fk = meta.fields_map[name]
            if getattr(fk, "related_model", None) is target:
                found.append(Relation(model, fk.source_field or f"{name}_id", name, target))
    return found


def lead_tables() -> list[Relation]:
    """Models with a foreign key to Lead (deliveries, events, enrollments, handoffs ...)."""
    return [r for r in _references(Lead) if r.model is not Lead]


def child_tables() -> list[Relation]:
    """Models that hang off those without a lead key of their own (links of a delivery)."""
    direct = {r.model for r in lead_tables()}
    return [r for parent in direct for r in _references(parent)
            if r.model not in direct and r.model is not Lead]  # fmt: skip


def unique_keys(relation: Relation) -> list[tuple[str, ...]]:
    """The other columns of each unique key that contains the lead column ((), for a
    one-to-one): rows of two leads that agree on them cannot both point at one lead."""
    meta = relation.model._meta
    keys: list[tuple[str, ...]] = []
    for key in meta.unique_together or ():
        own = (relation.field, relation.column)
        if any(name in own for name in key):
            keys.append(tuple(_column(meta, f) for f in key if f not in own))
    if relation.field in meta.o2o_fields or meta.fields_map[relation.field].unique:
        keys.append(())
    return keys


def _column(meta: Any, name: str) -> str:
    field = meta.fields_map.get(name)
    return str(getattr(field, "source_field", None) or name) if field else name


def plain(value: object) -> object:
    """A value as JSON can hold it."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def dumps(data: object) -> str:
    return json.dumps(data, indent=2, default=plain, ensure_ascii=False)
