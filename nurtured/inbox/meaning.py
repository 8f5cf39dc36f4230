"""What a lead's reply means (``intent.classify_intent``), as data on its REPLY event, and
the one thing it sets off outside the lead: a referral creates the referred lead."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from nurtured.app import App
from nurtured.exceptions import LeadError
from nurtured.inbox.intent import classify_intent
from nurtured.inbox.lang import language
from nurtured.inbox.parse import Inbound
from nurtured.intake import make_input, upsert
from nurtured.models import Event, EventKind, Lead

log = logging.getLogger(__name__)


def intent_data(msg: Inbound, text: str, now: datetime) -> dict[str, Any]:
    """``intent`` and, when there are, ``later_until`` and ``referral`` for the event."""
    lang = language(msg.header("content-language"), f"{msg.subject}\n{text}")
    intent = classify_intent(text, lang, now.date(), sender=msg.from_addr)
    data: dict[str, Any] = {"intent": intent.kind}
    if intent.later_until is not None:
        data["later_until"] = intent.later_until.isoformat()
    if intent.referral:
        data["referral"] = intent.referral
    if intent.referral_name:
        data["referral_name"] = intent.referral_name
    return data


async def create_referrals(app: App, referrals: Sequence[tuple[int, str, str]], now: datetime
                           ) -> None:  # fmt: skip
    """(lead id, its email, the referred address): each referred address becomes a lead
    with source "referral" and a ``referred_by`` field, enrolled by the entry rules; the
    referring lead's timeline says so. An address nurtured cannot mail is logged."""
    for lead_id, by, address in referrals:
        try:
            item = make_input({"email": address, "source": "referral", "referred_by": by})
        except LeadError as exc:
            log.warning("lead %s referred %r, which is no usable address: %s", by, address, exc)
            continue
        if await Lead.filter(email=item.email).exists():
            continue  # known already: nothing to create, nobody overwritten
        _, (created,) = await upsert([item], app.catalog, app.rules, now,
                                     sales_sources=app.settings.intake.sales_sources,
                                     app=app)  # fmt: skip
        await Event.create(lead_id=lead_id, kind=EventKind.FORWARD, occurred_at=now,
                           data={"referral": created.email, "referral_id": created.id})  # fmt: skip
        log.info("lead %s referred %s: created as a new lead", by, created.email)
