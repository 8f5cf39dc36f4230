"""The SLA clock: a reminder to the owner when little working time is left on a handoff,
an escalation to ``[handoff] escalate_to`` once its deadline has passed, each once, until
the owner acts (accept, return, won, lost, later). Run by the daemon after each pass and
by the worker tick; it reads only open handoffs nobody has acted on."""

from __future__ import annotations

import logging
from datetime import datetime

from nurtured.app import App
from nurtured.mailer import Transport
from nurtured.models import Event, EventKind, Handoff, HandoffState, Lead
from nurtured.sales.handoff import work_calendar
from nurtured.sales.mail import send_note
from nurtured.sales.sla import sla_state, working_time_between
from nurtured.timing import format_duration

log = logging.getLogger(__name__)


async def check_sla(app: App, transport: Transport, now: datetime) -> dict[str, int]:
    """Send the reminders and escalations due at ``now``; return how many of each."""
    settings = app.settings.handoff
    cal = work_calendar(app)
    counts = {"reminded": 0, "escalated": 0}
    waiting = await Handoff.filter(state=HandoffState.OPEN, acted_at__isnull=True).filter(
        escalated_at__isnull=True
    )
    if not waiting:
        return counts
    leads = {lead.id: lead for lead in await Lead.filter(id__in=[h.lead_id for h in waiting])}
    for handoff in waiting:
        lead = leads.get(handoff.lead_id)
        if lead is None:
            continue
        state = sla_state(handoff.handed_at, now, handoff.deadline, settings.remind_before, cal)
        if state == "overdue" and settings.escalate_to:
            to = [addr for _, addr in settings.escalate_to]
            late = format_duration(working_time_between(handoff.deadline, now, cal))
            text = (f"The handoff of {lead.email} to {handoff.owner} passed its deadline "
                    f"({handoff.deadline.isoformat()}) {late} of working time ago, and "
                    "nobody has acted on it yet.\n")  # fmt: skip
            if await _send(app, transport, to, f"Escalation: {lead.email} not followed up",
                           text, now):  # fmt: skip
                handoff.escalated_at = now
                counts["escalated"] += 1
                await _record(handoff, "escalation", to, now)
        elif state in ("due_soon", "overdue") and handoff.reminded_at is None:
            left = working_time_between(now, handoff.deadline, cal)
            text = (f"Reminder: {lead.email} was handed to you on "
                    f"{handoff.handed_at.isoformat()}; {format_duration(max(left, left - left))} "
                    f"of working time is left (deadline {handoff.deadline.isoformat()}).\n"
                    "Reply to the original alert (accept, return: <reason>, won <amount>, "
                    "lost: <reason>, later: <when>) or run `nurtured handoff`.\n")  # fmt: skip
            if await _send(app, transport, [handoff.owner], f"Reminder: follow up {lead.email}",
                           text, now):  # fmt: skip
                handoff.reminded_at = now
                counts["reminded"] += 1
                await _record(handoff, "reminder", [handoff.owner], now)
    return counts


async def _record(handoff: Handoff, what: str, to: list[str], now: datetime) -> None:
    await handoff.save(update_fields=["reminded_at", "escalated_at"])
    await Event.create(lead_id=handoff.lead_id, kind=EventKind.SLA, occurred_at=now,
                       data={"what": what, "to": to, "owner": handoff.owner,
                             "deadline": handoff.deadline.isoformat()})  # fmt: skip
    log.info("handoff of lead %s: %s sent to %s", handoff.lead_id, what, ", ".join(to))


async def _send(
    app: App, transport: Transport, to: list[str], subject: str, text: str, now: datetime
) -> bool:
    try:
        await send_note(app, transport, to, subject, text, now,
                        headers={"Auto-Submitted": "auto-generated"})  # fmt: skip
    except Exception as exc:  # tried again at the next check
        log.error("SLA mail to %s not sent: %s", ", ".join(to), exc)
        return False
    return True
