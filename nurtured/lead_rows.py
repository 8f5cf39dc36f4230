"""Leads and events as plain rows: what reacting to a batch of signals reads and writes.

Loading Lead and Event objects through the ORM cost more than the rest of reacting to a
batch of clicks, and under load every query waits its turn for many milliseconds, so
these are one query each, written out, with values converted by each field's own
``to_db_value`` / ``to_python_value`` as the ORM does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nurtured.db import update_rows
from nurtured.models import CURRENT, Event, Lead, LeadStatus


@dataclass(slots=True)
class LeadRow:
    """The Lead fields reacting uses, as plain values: loading Lead objects was the largest
    part of reacting to a batch of clicks (enrollment.settle reads email and timezone)."""

    id: int
    email: str
    status: LeadStatus
    score: int
    score_at: datetime | None
    timezone: str

    def as_lead(self) -> Lead:  # for enrollment.settle, which only reads it
        return Lead(id=self.id, email=self.email, status=self.status, score=self.score,
                    score_at=self.score_at, timezone=self.timezone)  # fmt: skip


async def insert_events(
    events: Sequence[Mapping[str, Any]], pace: Callable[[], Awaitable[None]]
) -> None:
    """INSERT the signals' events with one prepared statement executed many times (in the
    caller's transaction): an Event object per signal cost more than the rest of
    reacting to it. Values go through each field's ``to_db_value``, as in ``bulk_create``."""
    if not events:
        return
    db = Event._meta.db
    executor = db.executor_class(model=Event, db=db)
    fields = [(name, Event._meta.fields_map[name].to_db_value) for name in executor.regular_columns]
    rows: list[list[Any]] = []
    for event in events:
        await pace()
        rows.append([convert(event.get(name), Event) for name, convert in fields])
    await db.execute_many(executor.insert_query, rows)


# Leads and their current streams read in one query written out (as clicks._LOAD): the
# ORM cost more than the queries, and under load each query waits its turn many ms. The
# ids are ints (int() below) and the states constants: nothing else goes in.
_LEADS = (
    "SELECT l.id, l.email, l.status, l.score, l.score_at, l.timezone, e.stream_id FROM lead l "
    "LEFT JOIN enrollment e ON e.lead_id = l.id AND e.state IN ({}) WHERE l.id IN ({})"
)
_CURRENT = ", ".join(f"'{state.value}'" for state in CURRENT)
_WRITTEN = ["score", "score_at", "status"]  # the Lead fields reacting changes


def _stored_at(value: Any) -> datetime | None:
    """A stored score_at as the ORM reads it; SQLite's text parsed with fromisoformat,
    which is several times faster than the ORM's parser."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):  # else the ORM's parser has its say
            value = datetime.fromisoformat(value)
    at: datetime | None = Lead._meta.fields_map["score_at"].to_python_value(value)
    return at


async def read_leads(lead_ids: set[int]) -> tuple[list[LeadRow], dict[int, str]]:
    """The leads, as plain rows locked FOR UPDATE where the database can, and each one's
    current stream (leads in none are left out)."""
    db = Lead._meta.db
    ids = ", ".join(str(int(i)) for i in sorted(lead_ids))
    lock = " FOR UPDATE OF l" if db.capabilities.support_for_update else ""
    _, rows = await db.execute_query(_LEADS.format(_CURRENT, ids) + lock)
    leads = {
        r[0]: LeadRow(r[0], r[1], LeadStatus(r[2]), r[3], _stored_at(r[4]), r[5]) for r in rows
    }
    return list(leads.values()), {r[0]: r[6] for r in rows if r[6] is not None}


async def update_leads(leads: Sequence[LeadRow]) -> None:
    """UPDATE score, score_at and status of each row (``nurtured.db.update_rows``)."""
    await update_rows(Lead, leads, _WRITTEN)
