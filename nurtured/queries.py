"""Read-only views for people: a lead's timeline and the daemon's status, as plain data."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from tortoise.functions import Count, Min

from nurtured.exceptions import NotFound
from nurtured.models import Company, Delivery, Enrollment, EnrollmentState, Event, Lead, ScoreChange
from nurtured.scoring.explain import Change, explain


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


async def find_lead(email: str) -> Lead:
    lead = await Lead.filter(email=email.strip().lower()).select_related("company").first()
    if lead is None:
        raise NotFound(f"no lead with email {email!r}")
    return lead


async def lead_timeline(
    lead: Lead, *, now: datetime | None = None, half_life: timedelta | None = None
) -> dict[str, Any]:
    """Profile, enrollments, deliveries and events of one lead, oldest first; with ``now``
    and ``half_life`` also its score at ``now`` as the sum of its causes."""
    profile = (await load_profiles([lead]))[lead.id]
    if now is not None and half_life is not None:
        changes = [
            Change(at, rule, points, decays, cause)
            for at, rule, points, decays, cause in await ScoreChange.filter(lead_id=lead.id)
            .order_by("at", "id")
            .values_list("at", "rule", "points", "decays", "cause")
        ]
        total, parts = explain(changes, now, half_life)
        profile["score"] = total
        profile["score_at"] = now.isoformat()
        profile["score_causes"] = [part.as_dict() for part in parts]
    return profile


async def load_profiles(leads: Sequence[Lead]) -> dict[int, dict[str, Any]]:
    """``lead_timeline`` for many leads at once: four queries in all, whatever the
    number of leads. Sales alerts use it per batch."""
    ids = [lead.id for lead in leads]
    enrollments: dict[int, list[dict[str, Any]]] = defaultdict(list)
    timelines: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for (lead_id, stream, state, position, due, entered, left, reason) in (
        await Enrollment.filter(lead_id__in=ids).order_by("entered_at", "id").values_list(
            "lead_id", "stream_id", "state", "position", "next_due_at", "entered_at", "left_at",
            "reason")
    ):  # fmt: skip
        enrollments[lead_id].append({
            "stream": stream, "state": str(state), "position": position,
            "next_due_at": _iso(due), "entered_at": _iso(entered), "left_at": _iso(left),
            "reason": reason or None,
        })  # fmt: skip
    for (lead_id, sent, claimed, status, stream, content, subject, message_id, error) in (
        await Delivery.filter(lead_id__in=ids).order_by("claimed_at", "id").values_list(
            "lead_id", "sent_at", "claimed_at", "status", "stream_id", "content_id", "subject",
            "message_id", "error")
    ):  # fmt: skip
        timelines[lead_id].append({
            "at": _iso(sent or claimed), "what": f"email {status}", "stream": stream,
            "content": content, "subject": subject, "message_id": message_id,
            "error": error or None,
        })  # fmt: skip
    for lead_id, occurred, kind, stream, data in (
        await Event.filter(lead_id__in=ids)
        .order_by("occurred_at", "id")
        .values_list("lead_id", "occurred_at", "kind", "stream_id", "data")
    ):
        timelines[lead_id].append({"at": _iso(occurred), "what": str(kind), "stream": stream,
                                   **{k: v for k, v in (data or {}).items()}})  # fmt: skip
    # Read here, not taken from the leads: a lead read without select_related("company")
    # has a query there, not a company.
    wanted = {lead.company_id for lead in leads if lead.company_id}
    companies = dict(await Company.filter(id__in=list(wanted)).values_list("id", "name"))
    profiles = {}
    for lead in leads:
        timeline = timelines[lead.id]
        timeline.sort(key=lambda item: item["at"] or "")
        profiles[lead.id] = {
            "email": lead.email,
            "name": " ".join(p for p in (lead.first_name, lead.last_name) if p),
            "title": lead.title,
            "company": companies.get(lead.company_id) if lead.company_id else None,
            "source": lead.source,
            "interests": list(lead.interests or []),
            "timezone": lead.timezone or None,
            "status": str(lead.status),
            "stage": str(lead.stage),
            "score": lead.score + lead.profile_score,  # as of its last change (no decay)
            "fields": dict(lead.extra or {}),
            "created_at": _iso(lead.created_at),
            "enrollments": enrollments[lead.id],
            "timeline": timeline,
        }
    return profiles


async def status(now: datetime) -> dict[str, Any]:
    """Counts per stream and state, next due times, deliveries and leads by status."""
    per_stream: dict[str, dict[str, Any]] = {}
    rows = (
        await Enrollment.annotate(n=Count("id"))
        .group_by("stream_id", "state")
        .values_list("stream_id", "state", "n")
    )
    for stream_id, state, n in rows:
        entry = per_stream.setdefault(stream_id, {"states": {}, "next_due_at": None, "due_now": 0})
        entry["states"][str(state)] = n
    active = (EnrollmentState.ACTIVE, EnrollmentState.PAUSED)
    for stream_id, first in (
        await Enrollment.filter(state__in=active)
        .annotate(first=Min("next_due_at"))
        .group_by("stream_id")
        .values_list("stream_id", "first")
    ):
        per_stream[stream_id]["next_due_at"] = _iso(first)
    for stream_id, n in (
        await Enrollment.filter(state__in=active, next_due_at__lte=now)
        .annotate(n=Count("id"))
        .group_by("stream_id")
        .values_list("stream_id", "n")
    ):
        per_stream[stream_id]["due_now"] = n
    deliveries = dict(
        await Delivery.annotate(n=Count("id")).group_by("status").values_list("status", "n")
    )
    leads = dict(await Lead.annotate(n=Count("id")).group_by("status").values_list("status", "n"))
    return {
        "now": now.isoformat(),
        "streams": dict(sorted(per_stream.items())),
        "deliveries": {str(k): v for k, v in sorted(deliveries.items())},
        "leads": {str(k): v for k, v in sorted(leads.items())},
    }
