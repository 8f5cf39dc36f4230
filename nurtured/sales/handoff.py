"""Handoffs: a sales-ready lead gets an owner, an SLA deadline and an alert; the owner
acts on it (accept, return, won, lost, later) by replying to the alert or from the CLI,
and returned or lost leads go back to nurturing in the stream configured for the reason.

Every change of stage is a STAGE event with its cause, every action a SALES_ACTION event,
so ``lead show`` can always say why a lead is where it is.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from tortoise.transactions import in_transaction

from nurtured.app import App
from nurtured.enrollment import move_lead, stop_lead
from nurtured.exceptions import NurturedError
from nurtured.models import (
    CURRENT,
    OPEN_HANDOFFS,
    Enrollment,
    EnrollmentState,
    Event,
    EventKind,
    Handoff,
    HandoffState,
    Lead,
    LeadStage,
    LeadStatus,
)
from nurtured.sales.commands import Command
from nurtured.sales.gate import criteria_state, missing_criteria
from nurtured.sales.sla import WorkCalendar, add_working_hours

log = logging.getLogger(__name__)

# Alert reasons that hand the lead to sales (a reply only tells sales; it is no handoff).
HANDOFF_REASONS = frozenset({"sales_ready", "consult"})


class HandoffError(NurturedError):
    """A sales action that cannot apply (no open handoff, not the owner, ...)."""


def work_calendar(app: App) -> WorkCalendar:
    cal = app.settings.handoff.calendar
    return WorkCalendar(
        hours=cal.hours, days=cal.days, holidays=frozenset(cal.holidays), tz=cal.timezone
    )


def deadline_for(app: App, handed_at: datetime) -> datetime:
    return add_working_hours(handed_at, app.settings.handoff.sla, work_calendar(app))


def lacking(app: App, lead: Lead) -> list[str]:
    """The required handoff criteria this lead does not meet yet."""
    handoff = app.settings.handoff
    return missing_criteria(
        handoff.require,
        lead.extra or {},
        title=lead.title,
        authority_titles=handoff.authority_titles,
        disqualified=lead.stage == LeadStage.DISQUALIFIED,
    )


def criteria(app: App, lead: Lead) -> dict[str, bool]:
    handoff = app.settings.handoff
    names = handoff.require or ["budget", "authority", "need", "timing"]
    return criteria_state(
        names,
        lead.extra or {},
        title=lead.title,
        authority_titles=handoff.authority_titles,
        disqualified=lead.stage == LeadStage.DISQUALIFIED,
    )


def stage_event(lead: Lead, to: LeadStage, at: datetime, cause: str, **data: Any) -> Event:
    """Set the lead's stage and return the STAGE event that says why (not yet saved)."""
    before = lead.stage
    lead.stage = to
    log.info("lead %s: stage %s -> %s (%s)", lead.email, before, to, cause)
    return Event(
        lead_id=lead.id,
        kind=EventKind.STAGE,
        occurred_at=at,
        data={"from": str(before), "to": str(to), "cause": cause, **data},
    )


async def open_handoffs(
    app: App, leads: Sequence[Lead], owners: dict[int, str], now: datetime, cause: str
) -> dict[int, Handoff]:
    """Hand each lead to its owner: SQL, a Handoff with its SLA deadline, streams ended.
    A lead with an open handoff keeps it (no second one)."""
    existing = {
        h.lead_id: h
        for h in await Handoff.filter(
            lead_id__in=[lead.id for lead in leads], state__in=OPEN_HANDOFFS
        )
    }
    result: dict[int, Handoff] = dict(existing)
    deadline = deadline_for(app, now)
    events: list[Event] = []
    async with in_transaction():
        for lead in leads:
            if lead.id in existing:
                continue
            handoff = await Handoff.create(
                lead_id=lead.id,
                owner=owners[lead.id],
                handed_at=now,
                deadline=deadline,
                cause=cause,
            )
            result[lead.id] = handoff
            events.append(stage_event(lead, LeadStage.SQL, now, cause, owner=owners[lead.id]))
            events.append(
                Event(
                    lead_id=lead.id,
                    kind=EventKind.HANDOFF,
                    occurred_at=now,
                    data={
                        "owner": owners[lead.id],
                        "deadline": deadline.isoformat(),
                        "cause": cause,
                        "criteria": criteria(app, lead),
                    },
                )
            )
            if lead.status == LeadStatus.ACTIVE:
                await stop_lead(lead, LeadStatus.SALES, now, reason="handed to sales")
            lead.status = LeadStatus.SALES
            await lead.save(update_fields=["stage", "status"])
        if events:
            await Event.bulk_create(events)
    return result


async def record_alert_ids(ids: dict[int, str]) -> None:
    """Handoff id -> the alert's Message-ID, so a reply to the alert finds its handoff."""
    for handoff_id, message_id in ids.items():
        await Handoff.filter(id=handoff_id, alert_id__isnull=True).update(alert_id=message_id)


def may_act(app: App, handoff: Handoff, actor: str) -> bool:
    """Only the owner, or an address of [handoff] sales, may act on a handoff."""
    allowed = {handoff.owner.lower(), *(addr.lower() for _, addr in app.settings.handoff.sales)}
    return actor.strip().lower() in allowed


def _reentry(until: date | None, app: App) -> datetime | None:
    if until is None:
        return None
    tz = app.settings.sending.timezone
    return datetime.combine(until, time(0), tzinfo=tz).astimezone(UTC)


async def act(
    app: App,
    lead: Lead,
    command: Command,
    now: datetime,
    *,
    actor: str,
    via: str,
    ref: str | None = None,
) -> str:
    """Apply a sales command to the lead's open handoff; return a one-line confirmation.

    Raises HandoffError when it cannot apply (no open handoff, or ``actor`` may not act:
    ``via`` "cli" acts as the owner)."""
    handoff = await Handoff.filter(lead_id=lead.id, state__in=OPEN_HANDOFFS).order_by("-id").first()
    if handoff is None:
        raise HandoffError(f"{lead.email} has no open handoff")
    if via != "cli" and not may_act(app, handoff, actor):
        raise HandoffError(f"{actor} is not the owner of {lead.email}'s handoff ({handoff.owner})")
    handoff.acted_at = handoff.acted_at or now
    events = [
        Event(
            lead_id=lead.id,
            kind=EventKind.SALES_ACTION,
            occurred_at=now,
            ref=ref,
            data={
                "action": command.action,
                "reason": command.reason,
                "category": command.category,
                "by": actor,
                "via": via,
                "amount": str(command.amount) if command.amount is not None else None,
                "until": command.until.isoformat() if command.until else None,
            },
        )
    ]
    cause = f"{via} {command.action} by {actor}"
    if command.action == "accept":
        handoff.state = HandoffState.ACCEPTED
        events.append(stage_event(lead, LeadStage.ACCEPTED, now, cause))
        answer = f"{lead.email}: accepted by {actor}."
    elif command.action == "won":
        handoff.state, handoff.closed_at = HandoffState.WON, now
        handoff.amount = command.amount if command.amount is not None else Decimal(0)
        handoff.currency = command.currency or ""
        events.append(stage_event(lead, LeadStage.WON, now, cause, amount=str(handoff.amount)))
        answer = f"{lead.email}: won ({handoff.amount} {handoff.currency}".rstrip() + ")."
    else:  # return, lost, later: back to nurturing
        lost = command.action == "lost"
        handoff.state = HandoffState.LOST if lost else HandoffState.RETURNED
        handoff.closed_at = now
        handoff.reason = command.reason or ""
        handoff.category = "lost" if lost else (command.category or "timing")
        stage = LeadStage.LOST if lost else LeadStage.RETURNED
        events.append(
            stage_event(lead, stage, now, cause, reason=handoff.reason, category=handoff.category)
        )
        answer = await _back_to_nurture(app, lead, handoff.category, command.until, now)
    async with in_transaction():
        await handoff.save()
        await lead.save(update_fields=["stage", "status"])
        await Event.bulk_create(events)
    return answer


def nurture_stream(app: App, reason: str) -> str | None:
    """Where a lead sales gave back (or that is not interested) is nurtured: the stream
    ``[handoff] returns`` names for ``reason``, else its ``default``, else the
    lowest-priority stream (the long-term one)."""
    returns = app.settings.handoff.returns
    stream_id = returns.get(reason) or returns.get("default")
    if stream_id is None and app.catalog.streams:
        streams = app.catalog.streams.values()
        stream_id = max(streams, key=lambda st: st.entry.priority if st.entry else 0).id
    return stream_id


async def _back_to_nurture(
    app: App, lead: Lead, category: str, until: date | None, now: datetime
) -> str:
    stream_id = nurture_stream(app, category)
    lead.status = LeadStatus.ACTIVE
    await lead.save(update_fields=["status"])
    if stream_id is None:
        return f"{lead.email}: returned ({category}); no stream to nurture it in."
    enrollment = await move_lead(
        lead, stream_id, app.catalog, app.rules, now, reason=f"returned: {category}"
    )
    start = _reentry(until, app)
    if start is not None and enrollment.state in (EnrollmentState.ACTIVE, EnrollmentState.PAUSED):
        await Enrollment.filter(lead_id=lead.id, state__in=CURRENT).update(
            state=EnrollmentState.PAUSED, next_due_at=max(start, now)
        )
        await Event.create(
            lead_id=lead.id,
            kind=EventKind.PAUSED,
            occurred_at=now,
            stream_id=stream_id,
            data={"until": start.isoformat(), "reason": f"returned: {category}"},
        )
        return f"{lead.email}: back in {stream_id} ({category}) from {until}."
    return f"{lead.email}: back in {stream_id} ({category})."


async def open_handoff_list(now: datetime) -> list[tuple[Handoff, Lead]]:
    handoffs = await Handoff.filter(state__in=OPEN_HANDOFFS).order_by("deadline")
    leads = {lead.id: lead for lead in await Lead.filter(id__in=[h.lead_id for h in handoffs])}
    return [(h, leads[h.lead_id]) for h in handoffs if h.lead_id in leads]


def age(handoff: Handoff, now: datetime) -> timedelta:
    return now - handoff.handed_at


async def recheck_gate(app: App, lead: Lead, now: datetime) -> tuple[list[str], str | None]:
    """After a lead's fields changed: an MQL whose criteria now all hold is handed off
    (returns its owner; the caller sends the alert). Returns what it still lacks."""
    if lead.stage != LeadStage.MQL or lead.status not in (LeadStatus.ACTIVE, LeadStatus.REPLIED):
        return [], None
    lacks = lacking(app, lead)
    if lacks:
        return lacks, None
    from nurtured.alerts import recipients  # alerts imports this module

    owner = recipients(app, lead)[0]
    await open_handoffs(app, [lead], {lead.id: owner}, now, cause="criteria met")
    return [], owner
