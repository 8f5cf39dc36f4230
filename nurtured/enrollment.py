"""Putting leads into streams and moving them between streams, in batches.

Every change is collected in a ``Changes`` and written by ``Changes.save`` in a few
bulk statements, so the engine, the CLI and (later) click and reply handling share one
path and one set of log lines. Moving keeps everything a lead received: placement
always skips delivered content.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tortoise.transactions import in_transaction

from nurtured.db import update_rows
from nurtured.models import (
    CURRENT,
    Delivery,
    DeliveryStatus,
    Enrollment,
    EnrollmentState,
    Event,
    EventKind,
    Lead,
    LeadStage,
    LeadStatus,
)
from nurtured.scheduler import Ended, Held, Next, Placement, SendRules, due_at, lead_zone, place
from nurtured.streams import Catalog

log = logging.getLogger(__name__)

ENROLLMENT_FIELDS = (
    "state",
    "position",
    "next_due_at",
    "lease",
    "active_lead",
    "left_at",
    "reason",
    "content_version",
)


STREAM_EVENTS = (
    EventKind.ENROLLED,
    EventKind.MOVED,
    EventKind.PAUSED,
    EventKind.RESUMED,
    EventKind.EXHAUSTED,
    EventKind.ENDED,
)


@dataclass
class Changes:
    """Enrollment, event and lead changes waiting to be written together."""

    updated: dict[int, Enrollment] = field(default_factory=dict)
    created: list[Enrollment] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    lead_status: dict[int, LeadStatus] = field(default_factory=dict)

    def touch(self, enrollment: Enrollment) -> None:
        if enrollment.pk is not None:
            self.updated[enrollment.pk] = enrollment

    def event(
        self,
        lead_id: int,
        kind: EventKind,
        now: datetime,
        *,
        stream_id: str = "",
        delivery_id: int | None = None,
        **data: object,
    ) -> None:
        self.events.append(
            Event(
                lead_id=lead_id,
                delivery_id=delivery_id,
                kind=kind,
                stream_id=stream_id,
                data=data,
                occurred_at=now,
            )
        )

    def forget(self, lead_ids: set[int]) -> None:
        """Drop the stream changes planned for ``lead_ids`` (someone else changed them)."""
        self.updated = {k: e for k, e in self.updated.items() if e.lead_id not in lead_ids}
        self.created = [e for e in self.created if e.lead_id not in lead_ids]
        self.events = [
            e for e in self.events if e.lead_id not in lead_ids or e.kind not in STREAM_EVENTS
        ]

    async def save(self) -> None:
        """Write everything in one transaction."""
        async with in_transaction():
            await self.write()

    async def write(self) -> None:
        """Write everything inside the caller's transaction: ended enrollments first."""
        if self.updated:
            await update_rows(Enrollment, list(self.updated.values()), ENROLLMENT_FIELDS)
        if self.created:
            await Enrollment.bulk_create(self.created)
        if self.events:
            await Event.bulk_create(self.events)
        by_status: dict[LeadStatus, list[int]] = defaultdict(list)
        for lead_id, status in self.lead_status.items():
            by_status[status].append(lead_id)
        for status, ids in by_status.items():
            await Lead.filter(id__in=ids).update(status=status)


async def received_content(lead_ids: Iterable[int]) -> dict[int, set[str]]:
    """Content each lead has received or may have received (everything claimed, not deferred)."""
    received: dict[int, set[str]] = defaultdict(set)
    rows = await Delivery.filter(lead_id__in=list(lead_ids)).values_list(
        "lead_id", "content_id", "status"
    )
    for lead_id, content_id, status in rows:
        if status != DeliveryStatus.DEFERRED:
            received[lead_id].add(content_id)
    return received


def leave(enrollment: Enrollment, now: datetime, reason: str, changes: Changes) -> None:
    """End ``enrollment``: it no longer counts as the lead's current stream."""
    enrollment.state = EnrollmentState.ENDED
    enrollment.active_lead = None
    enrollment.next_due_at = None
    enrollment.lease = None
    enrollment.left_at = now
    enrollment.reason = reason
    changes.touch(enrollment)


def settle(
    enrollment: Enrollment,
    placement: Placement,
    *,
    lead: Lead,
    now: datetime,
    rules: SendRules,
    changes: Changes,
    reason: str,
) -> Enrollment:
    """Make the lead's enrollments say what ``placement`` decided; return the current one.

    Within the same stream the enrollment is updated in place; arriving in another
    stream ends this enrollment and creates one there (the lead's history stays).
    """
    target = placement.stream
    if target.id != enrollment.stream_id:
        leave(enrollment, now, reason, changes)
        changes.event(
            lead.id, EventKind.MOVED, now, stream_id=target.id,
            from_stream=enrollment.stream_id, to_stream=target.id, reason=reason,
        )  # fmt: skip
        log.info("lead %s: %s -> %s (%s)", lead.email, enrollment.stream_id, target.id, reason)
        enrollment = Enrollment(
            lead_id=lead.id,
            active_lead=lead.id,
            stream_id=target.id,
            state=EnrollmentState.ACTIVE,
            position=0,
            entered_at=now,
            content_version=target.content_version,
        )
        changes.created.append(enrollment)
    else:
        changes.touch(enrollment)
    enrollment.lease = None
    if isinstance(placement, Next):
        enrollment.state = EnrollmentState.ACTIVE
        enrollment.position = placement.step.index
        enrollment.next_due_at = due_at(now, placement.step, lead_zone(lead.timezone, rules), rules)
    elif isinstance(placement, Held):
        enrollment.state = EnrollmentState.HELD
        enrollment.position = len(target.steps)
        enrollment.next_due_at = None
        enrollment.content_version = target.content_version
        changes.event(lead.id, EventKind.EXHAUSTED, now, stream_id=target.id, then="hold")
        log.info("lead %s: %s exhausted, holding for new content", lead.email, target.id)
    elif isinstance(placement, Ended):
        changes.event(lead.id, EventKind.EXHAUSTED, now, stream_id=target.id, then="end")
        log.info("lead %s: %s exhausted, nurture ended", lead.email, target.id)
        leave(enrollment, now, "exhausted", changes)
    return enrollment


async def enroll_new(
    leads: Sequence[Lead], catalog: Catalog, rules: SendRules, now: datetime
) -> dict[int, str | None]:
    """Enroll leads that have no current stream by the streams' entry rules.

    Returns each lead's stream id (None where no entry rule matched or the lead
    already had a current stream: then it is left alone).
    """
    if not leads:
        return {}
    ids = [lead.id for lead in leads]
    busy: set[int] = {
        lead_id
        for (lead_id,) in await Enrollment.filter(lead_id__in=ids, state__in=CURRENT).values_list(
            "lead_id"
        )
    }
    received = await received_content(ids)
    changes = Changes()
    result: dict[int, str | None] = {}
    for lead in leads:
        stream = None
        if (lead.id not in busy and lead.status == LeadStatus.ACTIVE
                and lead.stage != LeadStage.DISQUALIFIED):  # fmt: skip
            stream = catalog.entry_stream(lead.source or None, lead.interests or ())
        result[lead.id] = stream.id if stream else None
        if stream is None:
            continue
        enrollment = Enrollment(
            lead_id=lead.id,
            active_lead=lead.id,
            stream_id=stream.id,
            entered_at=now,
            content_version=stream.content_version,
        )
        changes.created.append(enrollment)
        changes.event(lead.id, EventKind.ENROLLED, now, stream_id=stream.id, source=lead.source)
        placement = place(catalog, stream.id, 0, received[lead.id])
        settle(
            enrollment, placement, lead=lead, now=now, rules=rules, changes=changes,
            reason="entry",
        )  # fmt: skip
    await changes.save()
    return result


async def move_lead(
    lead: Lead,
    stream_id: str,
    catalog: Catalog,
    rules: SendRules,
    now: datetime,
    *,
    reason: str = "manual",
) -> Enrollment:
    """Move ``lead`` to ``stream_id`` keeping its history; it gets no content it already has."""
    catalog.stream(stream_id)  # NotFound before anything changes
    received = (await received_content([lead.id]))[lead.id]
    current = await Enrollment.filter(lead_id=lead.id, state__in=CURRENT).first()
    changes = Changes()
    if current is None:
        current = Enrollment(
            lead_id=lead.id,
            active_lead=lead.id,
            stream_id=stream_id,
            entered_at=now,
            content_version=catalog.stream(stream_id).content_version,
        )
        changes.created.append(current)
        changes.event(lead.id, EventKind.ENROLLED, now, stream_id=stream_id, source=reason)
    elif current.stream_id == stream_id:
        current.position = 0  # a move into the current stream re-places from its start
    placement = place(catalog, stream_id, 0, received)
    if placement.stream.id != stream_id:
        # The target is already exhausted for this lead: land there first, then follow it.
        current = settle(
            current, Next(catalog.stream(stream_id), catalog.stream(stream_id).steps[0]),
            lead=lead, now=now, rules=rules, changes=changes, reason=reason,
        )  # fmt: skip
        reason = "exhausted"
    result = settle(
        current, placement, lead=lead, now=now, rules=rules, changes=changes, reason=reason
    )
    await changes.save()
    return result


async def stop_lead(lead: Lead, status: LeadStatus, now: datetime, *, reason: str) -> None:
    """Give the lead a non-mailable status and end its current stream."""
    changes = Changes()
    for enrollment in await Enrollment.filter(lead_id=lead.id, state__in=CURRENT):
        leave(enrollment, now, reason, changes)
    changes.lead_status[lead.id] = status
    changes.event(lead.id, EventKind.ENDED, now, reason=reason, status=str(status))
    await changes.save()
    lead.status = status
    log.info("lead %s: status -> %s (%s)", lead.email, status, reason)


async def pause_lead(lead: Lead, until: datetime, now: datetime, *, reason: str) -> bool:
    """Pause the lead's current stream until ``until``; False when it has none."""
    enrollment = await Enrollment.filter(lead_id=lead.id, state__in=CURRENT).first()
    if enrollment is None:
        return False
    enrollment.state = EnrollmentState.PAUSED
    enrollment.next_due_at = until
    enrollment.lease = None
    changes = Changes()
    changes.touch(enrollment)
    changes.event(lead.id, EventKind.PAUSED, now, stream_id=enrollment.stream_id,
                  until=until.isoformat(), reason=reason)  # fmt: skip
    await changes.save()
    return True


async def wake_held(catalog: Catalog, now: datetime) -> int:
    """Wake leads held in streams whose steps changed since they were held."""
    woken = 0
    for stream in catalog.streams.values():
        woken += await (
            Enrollment.filter(stream_id=stream.id, state=EnrollmentState.HELD)
            .exclude(content_version=stream.content_version)
            .update(state=EnrollmentState.ACTIVE, next_due_at=now, position=0)
        )
    return woken


LEASE = timedelta(minutes=10)
