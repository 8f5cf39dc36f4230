"""``nurtured lead export`` and ``nurtured lead erase``: everything held about a person,
and its removal.

Both walk every table with a foreign key to Lead (``nurtured.data.relations``) and the
tables hanging off those (a delivery's links), so tables added later come along. Erasure
keeps the rows, so the counts in reports stay true, with their personal fields blanked:
free text, addresses, names, URLs beyond their origin, inbound Message-IDs. What stays
is what the counts need (kinds, states, streams, content ids, times, points, amounts).
A salted hash of the address goes on the suppression list, so intake recognises the
person and nothing mails them again. On SQLite the erasure runs with ``secure_delete``
and ends with a checkpoint that empties the write-ahead log, so the erased text is in
neither the database file's free space nor the -wal file.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from tortoise import connections
from tortoise.fields import CharField, JSONField, TextField
from tortoise.fields.data import CharEnumFieldInstance
from tortoise.models import Model
from tortoise.transactions import in_transaction

from nurtured.data.relations import Relation, child_tables, lead_tables, plain
from nurtured.data.suppression import suppress_hashed
from nurtured.enrollment import Changes, leave
from nurtured.models import CURRENT, Company, Enrollment, Event, EventKind, Lead, LeadStatus

log = logging.getLogger(__name__)

# Text columns that carry no personal data and that reports and the no-repeat guarantee
# read: kept, unless they hold one of the person's own strings.
KEEP = frozenset({
    "stream_id", "content_id", "token", "message_id", "tag", "category", "currency",
    "cause", "rule", "content_version", "owner", "alert_id",
})  # fmt: skip
# Keys of an event's data kept when their value is a flag, a number or a short word.
KEEP_DATA = frozenset({
    "machine", "intent", "tag", "then", "status", "from", "to", "cause", "category",
    "points", "rule", "agent", "kind", "action", "from_lead", "kept_apart",
})  # fmt: skip


async def held_leads(lead: Lead) -> list[int]:
    """The lead and the merged leads (``nurtured.data.merge``) whose rows it kept apart."""
    ids = [lead.id]
    for data in await Event.filter(lead_id=lead.id, kind=EventKind.MERGED).values_list(
        "data", flat=True
    ):
        if isinstance(data, dict) and isinstance(data.get("from_lead"), int):
            ids.append(data["from_lead"])
    found = await Lead.filter(id__in=ids[1:], status=LeadStatus.MERGED)
    return [lead.id, *(row.id for row in found)]


async def export_lead(lead: Lead, now: datetime) -> dict[str, Any]:
    """Every row held about ``lead`` (and its merged leads), by table; the export itself
    is logged as an event that names no personal data."""
    ids = await held_leads(lead)
    data: dict[str, Any] = {"exported_at": now.isoformat(), "leads": [], "tables": {}}
    for row in await Lead.filter(id__in=ids).values():
        data["leads"].append(_plain_row(row))
    company_ids = [r["company_id"] for r in data["leads"] if r.get("company_id")]
    data["companies"] = [_plain_row(r) for r in await Company.filter(id__in=company_ids).values()]
    tables = data["tables"]
    for relation in lead_tables():
        rows = await relation.model.filter(**{f"{relation.column}__in": ids}).values()
        tables[relation.model._meta.db_table] = [_plain_row(r) for r in rows]
    for relation in child_tables():
        parents = [r["id"] for r in tables.get(relation.parent._meta.db_table, [])]
        rows = await relation.model.filter(**{f"{relation.column}__in": parents}).values()
        tables[relation.model._meta.db_table] = [_plain_row(r) for r in rows]
    counts = {name: len(rows) for name, rows in tables.items()}
    await Event.create(lead_id=lead.id, kind=EventKind.EXPORTED, occurred_at=now,
                       data={"rows": counts})  # fmt: skip
    log.info("lead %d exported (%s)", lead.id, counts)
    return data


def _plain_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: plain(v) for k, v in row.items()}


async def erase_lead(lead: Lead, now: datetime) -> dict[str, int]:
    """Remove ``lead``'s personal data everywhere; returns the rows scrubbed per table."""
    secure = await _secure_delete()
    ids = await held_leads(lead)
    leads = await Lead.filter(id__in=ids)
    personal = _personal_strings(leads)
    counts: dict[str, int] = {}
    async with in_transaction():
        await _end_streams(ids, now)
        for relation in lead_tables():
            counts[relation.model._meta.db_table] = await _scrub(relation, ids, personal)
        for relation in child_tables():
            parents = await relation.parent.filter(
                **{f"{_lead_column(relation.parent)}__in": ids}
            ).values_list(relation.parent._meta.pk_attr, flat=True)
            counts[relation.model._meta.db_table] = await _scrub(relation, parents, personal)
        for row in leads:
            await suppress_hashed(row.email, now, "erased")
        company_ids = {row.company_id for row in leads if row.company_id}
        await _scrub_rows(leads, personal, keep=KEEP | {"source"}, skip={"email"})
        for row in leads:
            status = LeadStatus.BOUNCED if row.status == LeadStatus.BOUNCED else (
                LeadStatus.MERGED if row.status == LeadStatus.MERGED else LeadStatus.UNSUBSCRIBED
            )  # fmt: skip
            await Lead.filter(id=row.id).update(
                email=f"erased-{row.id}@erased.invalid", status=status, company_id=None,
                updated_at=now,
            )  # fmt: skip
        for company_id in company_ids:  # a company nobody else is at goes with the person
            if not await Lead.filter(company_id=company_id).exists():
                await Company.filter(id=company_id).delete()
        await Event.create(lead_id=lead.id, kind=EventKind.ERASED, occurred_at=now,
                           data={"rows": counts})  # fmt: skip
    if secure:
        await _checkpoint()
    log.info("lead %d erased (%s)", lead.id, counts)
    return counts


def _lead_column(model: type[Model]) -> str:
    return next(r.column for r in lead_tables() if r.model is model)


def _personal_strings(leads: list[Lead]) -> list[str]:
    """The addresses: a kept identifier (a content id, a tag) that holds one is blanked too.
    (Names are not matched there: "Ada" would blank a content id "ada-guide".)"""
    return [lead.email.lower() for lead in leads]


def _holds(value: object, personal: list[str]) -> bool:
    text = str(value).lower()
    return any(s in text for s in personal)


async def _end_streams(ids: list[int], now: datetime) -> None:
    changes = Changes()
    for enrollment in await Enrollment.filter(lead_id__in=ids, state__in=CURRENT):
        leave(enrollment, now, "erased", changes)
    await changes.write()


async def _scrub(relation: Relation, parent_ids: list[Any], personal: list[str]) -> int:
    rows = await relation.model.filter(**{f"{relation.column}__in": list(parent_ids)})
    await _scrub_rows(rows, personal, keep=KEEP)
    return len(rows)


async def _scrub_rows(
    rows: Sequence[Model], personal: list[str], *, keep: frozenset[str],
    skip: frozenset[str] | set[str] = frozenset(),
) -> None:  # fmt: skip
    """Blank every text and JSON column of ``rows`` but the ``keep`` ones and enums."""
    for row in rows:
        changed = []
        for name, field in row._meta.fields_map.items():
            if not isinstance(field, CharField | TextField | JSONField) or field.pk:
                continue
            if isinstance(field, CharEnumFieldInstance) or name in skip:
                continue
            value = getattr(row, name)
            new = _blank(name, field, value, row.pk, personal, keep)
            if new != value:
                setattr(row, name, new)
                changed.append(name)
        if changed:
            await row.save(update_fields=changed)


def _blank(
    name: str, field: Any, value: object, pk: object, personal: list[str], keep: frozenset[str]
) -> object:
    if value is None or value in ("", {}, []):
        return value
    if isinstance(field, JSONField):
        if not isinstance(value, dict):
            return type(value)() if isinstance(value, list | dict) else None
        return {k: v for k, v in value.items() if k in KEEP_DATA and _harmless(v, personal)}
    if name in keep and not _holds(value, personal):
        return value
    if name == "url":
        parts = urlsplit(str(value))
        return f"{parts.scheme}://{parts.netloc}/" if parts.netloc else ""
    if field.null:
        return None
    if field.unique:
        return f"erased-{pk}"
    return ""


def _harmless(value: object, personal: list[str]) -> bool:
    if isinstance(value, bool | int | float):
        return True
    return isinstance(value, str) and len(value) <= 40 and "@" not in value and not _holds(
        value, personal)  # fmt: skip


async def _secure_delete() -> bool:
    """On SQLite, zero freed content from now on (this connection); False elsewhere."""
    conn = connections.get("default")
    if conn.capabilities.dialect != "sqlite":
        return False
    await conn.execute_script("PRAGMA secure_delete = ON")
    return True


async def _checkpoint() -> None:
    """Copy the log into the database file and truncate it: the old page images, which
    hold the erased text, leave the -wal file."""
    conn = connections.get("default")
    for _ in range(50):
        _, rows = await conn.execute_query("PRAGMA wal_checkpoint(TRUNCATE)")
        if rows and not rows[0][0]:
            return
    log.warning("the write-ahead log could not be emptied (another process is reading); "
                "it is emptied at that process's next checkpoint")  # fmt: skip
