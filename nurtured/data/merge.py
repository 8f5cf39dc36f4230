"""Two leads that are one person become one, keeping every row of both histories.

Every table with a foreign key to Lead (found by introspection, so tables added later
come along) has its rows moved to the survivor in one transaction. A row that cannot
move because the survivor already has its twin under a unique key (the same content
delivered to both addresses: UNIQUE (lead, content)) stays, unchanged, on the merged
lead, which is kept as a row of status ``merged`` with no personal data: both
deliveries stay on record, and the survivor's own row for that content keeps the
no-repeat guarantee for both histories.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from tortoise.transactions import in_transaction

from nurtured.data.relations import Relation, lead_tables, unique_keys
from nurtured.enrollment import Changes, leave
from nurtured.exceptions import LeadError
from nurtured.models import CURRENT, Enrollment, Event, EventKind, Lead, LeadStage, LeadStatus
from nurtured.reactions import decayed

log = logging.getLogger(__name__)

# The status that says most about whether the person may be mailed wins.
STATUS_RANK = [LeadStatus.ACTIVE, LeadStatus.REPLIED, LeadStatus.SALES,
               LeadStatus.UNSUBSCRIBED, LeadStatus.BOUNCED]  # fmt: skip
STAGE_RANK = [LeadStage.NEW, LeadStage.NURTURING, LeadStage.RETURNED, LeadStage.LOST,
              LeadStage.MQL, LeadStage.SQL, LeadStage.ACCEPTED, LeadStage.WON,
              LeadStage.DISQUALIFIED, LeadStage.UNSUBSCRIBED, LeadStage.BOUNCED]  # fmt: skip
PROFILE = ("first_name", "last_name", "title", "company_id", "source", "timezone")


def tombstone_email(lead_id: int) -> str:
    return f"merged-{lead_id}@merged.invalid"


async def merge_leads(keep: Lead, other: Lead, now: datetime, half_life: timedelta) -> int:
    """Move everything of ``other`` to ``keep``; returns how many rows stayed apart."""
    if keep.id == other.id:
        raise LeadError(f"{keep.email}: a lead cannot be merged with itself")
    if LeadStatus.MERGED in (keep.status, other.status):
        raise LeadError("a merged lead holds no history of its own: merge its survivor")
    async with in_transaction():
        await _current_stream(keep, other, now)
        apart = 0
        for relation in lead_tables():
            apart += await _move(relation, keep.id, other.id)
        _profile(keep, other, now, half_life)
        if apart:
            await _tombstone(other, now)
        else:
            await Lead.filter(id=other.id).delete()
        await keep.save()
        await Event.create(lead_id=keep.id, kind=EventKind.MERGED, occurred_at=now,
                           data={"from_lead": other.id, "kept_apart": apart})  # fmt: skip
    log.info("lead %d merged into lead %d (%d rows kept apart)", other.id, keep.id, apart)
    return apart


async def change_address(lead: Lead, address: str, now: datetime, half_life: timedelta) -> str:
    """Give ``lead`` a new (normalised) address; a lead that already has it is merged in."""
    if address == lead.email:
        return "unchanged"
    how = "changed"
    async with in_transaction():
        existing = await Lead.get_or_none(email=address)
        if existing is not None:
            await merge_leads(lead, existing, now, half_life)
            how = f"changed; lead {existing.id} (that address) merged in"
        lead.email, lead.updated_at = address, now
        await lead.save(update_fields=["email", "updated_at"])
    return how


async def _current_stream(keep: Lead, other: Lead, now: datetime) -> None:
    """One current stream per lead: the survivor's wins; the other's ends (or moves over
    when the survivor has none)."""
    current = {
        e.lead_id: e
        for e in await Enrollment.filter(lead_id__in=[keep.id, other.id], state__in=CURRENT)
    }
    theirs = current.get(other.id)
    if theirs is None:
        return
    changes = Changes()
    if keep.id in current:
        leave(theirs, now, f"merged into lead {keep.id}", changes)
        await changes.write()
    else:
        await Enrollment.filter(id=theirs.id).update(active_lead=keep.id)


async def _move(relation: Relation, keep_id: int, other_id: int) -> int:
    """Point ``other_id``'s rows at ``keep_id``, except those a unique key keeps apart."""
    model, column = relation.model, relation.column
    pk = model._meta.pk_attr
    stay: set[object] = set()
    for key in unique_keys(relation):
        if not key:  # one row per lead: the survivor's wins
            if await model.filter(**{column: keep_id}).exists():
                stay |= set(await model.filter(**{column: other_id}).values_list(pk, flat=True))
            continue
        taken = set(await model.filter(**{column: keep_id}).values_list(*key))
        for row in await model.filter(**{column: other_id}).values_list(pk, *key):
            if tuple(row[1:]) in taken:
                stay.add(row[0])
    moving = model.filter(**{column: other_id})
    if stay:
        moving = moving.exclude(**{f"{pk}__in": list(stay)})
    await moving.update(**{column: keep_id})
    return len(stay)


def _profile(keep: Lead, other: Lead, now: datetime, half_life: timedelta) -> None:
    for name in PROFILE:
        if not getattr(keep, name):
            setattr(keep, name, getattr(other, name))
    keep.interests = list(dict.fromkeys([*(keep.interests or []), *(other.interests or [])]))
    keep.extra = {**(other.extra or {}), **(keep.extra or {})}
    keep.score = decayed(keep.score, keep.score_at, now, half_life) + decayed(
        other.score, other.score_at, now, half_life
    )
    keep.score_at = now
    if STATUS_RANK.index(other.status) > STATUS_RANK.index(keep.status):
        keep.status = other.status
    if STAGE_RANK.index(other.stage) > STAGE_RANK.index(keep.stage):
        keep.stage = other.stage
    keep.created_at = min(keep.created_at, other.created_at)
    keep.updated_at = now


async def _tombstone(other: Lead, now: datetime) -> None:
    """The merged lead keeps only the rows that could not move, and no personal data."""
    await Lead.filter(id=other.id).update(
        email=tombstone_email(other.id), first_name="", last_name="", title="",
        company_id=None, timezone="", extra={}, status=LeadStatus.MERGED, updated_at=now,
    )  # fmt: skip
