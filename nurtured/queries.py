"""Read-only views for people: a lead's timeline and the daemon's status, as plain data."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tortoise.functions import Count, Min

from nurtured.exceptions import NotFound
from nurtured.models import Delivery, Enrollment, EnrollmentState, Event, Lead


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


async def find_lead(email: str) -> Lead:
    lead = await Lead.filter(email=email.strip().lower()).select_related("company").first()
    if lead is None:
        raise NotFound(f"no lead with email {email!r}")
    return lead


async def lead_timeline(lead: Lead) -> dict[str, Any]:
    """Profile, enrollments, deliveries and events of one lead, oldest first."""
    enrollments = await Enrollment.filter(lead_id=lead.id).order_by("entered_at", "id")
    deliveries = await Delivery.filter(lead_id=lead.id).order_by("claimed_at", "id")
    events = await Event.filter(lead_id=lead.id).order_by("occurred_at", "id")
    timeline: list[dict[str, Any]] = []
    for d in deliveries:
        timeline.append({
            "at": _iso(d.sent_at or d.claimed_at), "what": f"email {d.status}",
            "stream": d.stream_id, "content": d.content_id, "subject": d.subject,
            "message_id": d.message_id, "error": d.error or None,
        })  # fmt: skip
    for e in events:
        timeline.append({"at": _iso(e.occurred_at), "what": str(e.kind), "stream": e.stream_id,
                         **{k: v for k, v in (e.data or {}).items()}})  # fmt: skip
    timeline.sort(key=lambda item: item["at"] or "")
    company = lead.company
    return {
        "email": lead.email,
        "name": " ".join(p for p in (lead.first_name, lead.last_name) if p),
        "title": lead.title,
        "company": company.name if company else None,
        "source": lead.source,
        "interests": list(lead.interests or []),
        "timezone": lead.timezone or None,
        "status": str(lead.status),
        "score": lead.score,
        "fields": dict(lead.extra or {}),
        "created_at": _iso(lead.created_at),
        "enrollments": [
            {
                "stream": e.stream_id,
                "state": str(e.state),
                "position": e.position,
                "next_due_at": _iso(e.next_due_at),
                "entered_at": _iso(e.entered_at),
                "left_at": _iso(e.left_at),
                "reason": e.reason or None,
            }
            for e in enrollments
        ],
        "timeline": timeline,
    }


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
