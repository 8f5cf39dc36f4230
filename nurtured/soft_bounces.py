"""Soft bounces in a row, per lead: what ``[inbox] soft_bounce_limit`` counts.

A soft bounce (mailbox full, a delay notice) says the address may still work, so only
several in a row stop a lead. "In a row" is in the order the emails were sent: a
delivery that was sent and has had no bounce since starts the count again, and a soft
bounce that arrives late for an email sent before that delivery no longer counts.
A bounce matched to no delivery (by the failed address only) is placed by when it came.

Hard bounces stop the lead by themselves; policy blocks (5.7.x) say nothing about the
address and reports that say the lead got the message say nothing bad: none of them
counts, and the deliveries they are about do not start the count again either (except
the delivered ones, which are fine).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from nurtured.models import Delivery, DeliveryStatus, Event, EventKind

__all__ = ["NOT_SOFT", "SoftBounces", "is_soft"]

# Bounce data flags that keep a bounce from adding up to the limit.
NOT_SOFT = ("hard", "policy", "delivered")


class _Bounce(Protocol):
    @property
    def lead_id(self) -> int: ...
    @property
    def delivery_id(self) -> int | None: ...
    @property
    def at(self) -> datetime: ...
    @property
    def data(self) -> Mapping[str, Any]: ...


def is_soft(data: Mapping[str, Any]) -> bool:
    return not any(data.get(flag) for flag in NOT_SOFT)


@dataclass
class SoftBounces:
    """The soft bounces in a row of some leads, kept up to date as a batch adds bounces."""

    sent_at: dict[int, datetime | None] = field(default_factory=dict)  # delivery -> sent
    since: dict[int, datetime] = field(default_factory=dict)  # lead -> last clean delivery
    counts: dict[int, int] = field(default_factory=lambda: defaultdict(int))

    @classmethod
    async def load(cls, bounces: Sequence[_Bounce]) -> SoftBounces:
        """For the leads of ``bounces`` (a batch about to be applied): their deliveries
        and recorded bounces, read in two queries."""
        lead_ids = {b.lead_id for b in bounces}
        found = cls()
        if not lead_ids:
            return found
        events = await Event.filter(lead_id__in=lead_ids, kind=EventKind.BOUNCE).values_list(
            "lead_id", "delivery_id", "occurred_at", "data"
        )
        deliveries = await Delivery.filter(lead_id__in=lead_ids).values_list(
            "id", "lead_id", "status", "sent_at"
        )
        recorded = [_Recorded(lead, delivery, at, data if isinstance(data, dict) else {})
                    for lead, delivery, at, data in events]  # fmt: skip
        bounced = {b.delivery_id for b in [*recorded, *bounces] if not b.data.get("delivered")}
        for delivery_id, lead_id, status, sent_at in deliveries:
            found.sent_at[delivery_id] = sent_at
            if status == DeliveryStatus.SENT and sent_at is not None and delivery_id not in bounced:
                found.since[lead_id] = max(sent_at, found.since.get(lead_id, sent_at))
        for bounce in recorded:
            found.add(bounce)
        return found

    def _when(self, bounce: _Bounce) -> datetime:
        """Where a bounce stands in the lead's sequence: when its email was sent."""
        sent = self.sent_at.get(bounce.delivery_id) if bounce.delivery_id else None
        return sent or bounce.at

    def add(self, bounce: _Bounce) -> int:
        """Count ``bounce`` (if soft and in the current run); the lead's count after it."""
        since = self.since.get(bounce.lead_id)
        if is_soft(bounce.data) and (since is None or self._when(bounce) > since):
            self.counts[bounce.lead_id] += 1
        return self.counts[bounce.lead_id]

    def count(self, lead_id: int) -> int:
        return self.counts[lead_id]


@dataclass(frozen=True)
class _Recorded:
    lead_id: int
    delivery_id: int | None
    at: datetime
    data: Mapping[str, Any]
