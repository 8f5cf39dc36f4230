"""Leads as plain rows: what reacting to a batch of signals reads and writes of them.

Loading Lead objects through the ORM cost more than the rest of reacting to a batch of
clicks, and under load every query waits its turn for many milliseconds, so these are
one query each, written out, with values converted by each field's own
``to_db_value`` / ``to_python_value`` as the ORM does. (Events are inserted as plain
rows too: ``nurtured.db.insert_rows``.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nurtured.db import update_rows
from nurtured.models import CURRENT, Lead, LeadStage, LeadStatus


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
    stage: LeadStage = LeadStage.NEW
    title: str = ""
    extra_raw: Any = None  # as stored: decoded only when the handoff gate asks
    score_value: float | None = None  # the unrounded score (see models.Lead)
    profile_score: int = 0
    company_id: int | None = None

    def fields(self) -> dict[str, Any]:
        """The lead's extra fields (budget, timing, owner, ...), decoded."""
        value = Lead._meta.fields_map["extra"].to_python_value(self.extra_raw)
        return value if isinstance(value, dict) else {}

    def as_lead(self) -> Lead:  # for enrollment.settle, which only reads it
        return Lead(
            id=self.id,
            email=self.email,
            status=self.status,
            score=self.score,
            score_at=self.score_at,
            timezone=self.timezone,
        )


# Leads and their current streams read in one query written out (as clicks._LOAD): the
# ORM cost more than the queries, and under load each query waits its turn many ms. The
# ids are ints (int() below) and the states constants: nothing else goes in.
_LEADS = (
    "SELECT l.id, l.email, l.status, l.score, l.score_at, l.timezone, e.stream_id, l.stage,"
    " l.title, l.extra, l.score_value, l.profile_score, l.company_id"
    " FROM lead l "
    "LEFT JOIN enrollment e ON e.lead_id = l.id AND e.state IN ({}) WHERE l.id IN ({})"
)
_CURRENT = ", ".join(f"'{state.value}'" for state in CURRENT)
_WRITTEN = [
    "score",
    "score_at",
    "score_value",
    "status",
    "stage",
]  # the Lead fields reacting changes


async def read_leads(lead_ids: set[int]) -> tuple[list[LeadRow], dict[int, str]]:
    """The leads, as plain rows locked FOR UPDATE where the database can, and each one's
    current stream (leads in none are left out)."""
    db = Lead._meta.db
    ids = ", ".join(str(int(i)) for i in sorted(lead_ids))
    lock = " FOR UPDATE OF l" if db.capabilities.support_for_update else ""
    _, rows = await db.execute_query(_LEADS.format(_CURRENT, ids) + lock)
    stored_at = Lead._meta.fields_map["score_at"].to_python_value
    leads = {
        r[0]: LeadRow(
            r[0],
            r[1],
            LeadStatus(r[2]),
            r[3],
            stored_at(r[4]),
            r[5],
            LeadStage(r[7]),
            r[8],
            r[9],
            r[10],
            r[11] or 0,
            r[12],
        )
        for r in rows
    }
    return list(leads.values()), {r[0]: r[6] for r in rows if r[6] is not None}


async def update_leads(leads: Sequence[LeadRow]) -> None:
    """UPDATE the fields reacting changes of each row (``nurtured.db.update_rows``)."""
    await update_rows(Lead, leads, _WRITTEN)
