"""Which score rules moved leads to MQL in a period (for the report)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from nurtured.models import Event, EventKind, ScoreChange


async def mql_rules(since: datetime, until: datetime) -> dict[str, dict[str, int]]:
    """rule -> {"leads": how many MQLs of the period it gave points to before they
    became MQL, "points": those points (given, before decay)}, most points first."""
    became: dict[int, datetime] = {}
    for lead_id, at, data in await Event.filter(
        kind=EventKind.STAGE, occurred_at__gte=since, occurred_at__lt=until
    ).values_list("lead_id", "occurred_at", "data"):
        if (data or {}).get("to") == "mql" and lead_id not in became:
            became[lead_id] = at
    points: dict[str, int] = defaultdict(int)
    leads: dict[str, set[int]] = defaultdict(set)
    for lead_id, at, rule, given in await ScoreChange.filter(lead_id__in=list(became)).values_list(
        "lead_id", "at", "rule", "points"
    ):
        if at <= became[lead_id]:
            points[rule] += given
            leads[rule].add(lead_id)
    order = sorted(points, key=lambda r: (-points[r], r))
    return {rule: {"leads": len(leads[rule]), "points": points[rule]} for rule in order}
