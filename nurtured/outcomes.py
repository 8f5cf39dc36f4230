"""What became of each send: delivery states, events, the next step, in one transaction.

The engine's last two stages. ``record`` decides (pure, in memory); ``save`` writes it
all in one transaction, keeping what another writer decided meanwhile.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from nurtured.config import Retry
from nurtured.db import update_rows
from nurtured.enrollment import Changes, leave, settle
from nurtured.exceptions import (
    ClaimLost,
    PermanentSendError,
    SendError,
    TransientSendError,
    UnknownSendOutcome,
)
from nurtured.models import Delivery, DeliveryStatus, Enrollment, EventKind, Lead, LeadStatus
from nurtured.render import RenderedEmail
from nurtured.scheduler import SendRules, lead_zone, place, retry_at
from nurtured.splits.spec import Variant
from nurtured.streams import Catalog, Step, Stream
from nurtured.timing import next_send_time

log = logging.getLogger(__name__)


@dataclass
class Job:
    """One email about to go out."""

    enrollment: Enrollment
    lead: Lead
    stream: Stream
    step: Step
    token: str
    message_id: str
    attempts: int = 0  # earlier attempts (a deferred delivery being retried)
    delivery_id: int | None = None
    rendered: RenderedEmail | None = None
    outcome: SendError | None = None
    variant: Variant | None = None  # the step's split-test variant for this lead


@dataclass
class PassReport:
    """What one pass over due work did; ``counts`` keys: sent, deferred, failed, unknown, ..."""

    counts: Counter[str] = field(default_factory=Counter)

    def __getitem__(self, key: str) -> int:
        return self.counts[key]

    def summary(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items())) or "nothing due"


def record(
    jobs: list[Job],
    received: dict[int, set[str]],
    now: datetime,
    changes: Changes,
    report: PassReport,
    *,
    catalog: Catalog,
    rules: SendRules,
    retry: Retry,
) -> None:
    """Turn each send's outcome into delivery states, events and the lead's next step."""
    for job in jobs:
        lead, enrollment, outcome = job.lead, job.enrollment, job.outcome
        if isinstance(outcome, ClaimLost):
            # Recovery gave the claim to someone else before we sent: not ours to record.
            report.counts["claim_lost"] += 1
            enrollment.next_due_at = now
            enrollment.lease = None
            changes.touch(enrollment)
            continue
        job.attempts += 1
        if isinstance(outcome, TransientSendError) and job.attempts < retry.max_attempts:
            report.counts["deferred"] += 1
            again = retry_at(now, job.attempts, retry.backoff)
            enrollment.next_due_at = next_send_time(
                again, job.step.window or rules.window,
                lead_zone(lead.timezone, rules), rules.holidays,
            )  # fmt: skip
            enrollment.lease = None
            changes.touch(enrollment)
            log.warning("lead %s: %s deferred (%s), retry at %s", lead.email,
                        job.step.content, outcome, enrollment.next_due_at)  # fmt: skip
            continue
        received[lead.id].add(job.step.content)
        if outcome is None:
            report.counts["sent"] += 1
        elif isinstance(outcome, UnknownSendOutcome):
            report.counts["unknown"] += 1
            changes.event(lead.id, EventKind.SEND_UNKNOWN, now, stream_id=job.stream.id,
                          delivery_id=job.delivery_id, error=str(outcome))  # fmt: skip
            log.error("lead %s: %s outcome unknown (%s): not resent", lead.email,
                      job.step.content, outcome)  # fmt: skip
        else:
            report.counts["failed"] += 1
            changes.event(lead.id, EventKind.SEND_FAILED, now, stream_id=job.stream.id,
                          delivery_id=job.delivery_id, error=str(outcome),
                          code=outcome.code)  # fmt: skip
            log.error("lead %s: %s failed: %s", lead.email, job.step.content, outcome)
            if isinstance(outcome, PermanentSendError) and outcome.dead_address:
                changes.lead_status[lead.id] = LeadStatus.BOUNCED
                changes.event(lead.id, EventKind.BOUNCE, now, delivery_id=job.delivery_id,
                              hard=True, error=str(outcome))  # fmt: skip
                leave(enrollment, now, "bounced", changes)
                report.counts["bounced"] += 1
                continue
        placement = place(catalog, job.stream.id, job.step.index + 1, received[lead.id])
        before = enrollment.stream_id
        after = settle(enrollment, placement, lead=lead, now=now, rules=rules,
                       changes=changes, reason="exhausted")  # fmt: skip
        if after.stream_id != before:
            report.counts["moved"] += 1


async def save(
    jobs: list[Job],
    now: datetime,
    changes: Changes,
    lease: str | None,
    held: dict[int, int],
    *,
    retry: Retry,
) -> None:
    """Record every outcome and every enrollment change in one transaction.

    An enrollment that lost our lease meanwhile (a click moved the lead, it
    unsubscribed, someone ran ``nurtured move``) keeps what the other writer decided:
    our plans for that lead are dropped, its delivery outcomes are still recorded.
    """
    sent = [job.delivery_id for job in jobs if job.outcome is None]
    others = []
    for job in jobs:
        if job.outcome is None or job.delivery_id is None or isinstance(job.outcome, ClaimLost):
            continue
        status = DeliveryStatus.FAILED
        retry_time = None
        if isinstance(job.outcome, UnknownSendOutcome):
            status = DeliveryStatus.UNKNOWN
        elif isinstance(job.outcome, TransientSendError) and job.attempts < retry.max_attempts:
            status, retry_time = DeliveryStatus.DEFERRED, job.enrollment.next_due_at
        others.append(
            Delivery(
                id=job.delivery_id,
                status=status,
                attempts=job.attempts,
                retry_at=retry_time,
                error=str(job.outcome)[:2000],
            )
        )
    async with in_transaction():
        if sent:
            await Delivery.filter(id__in=sent).update(
                status=DeliveryStatus.SENT, sent_at=now, attempts=F("attempts") + 1
            )
        if others:
            await update_rows(Delivery, others, ("status", "attempts", "retry_at", "error"))
        still = Enrollment.filter(id__in=list(held), lease=lease)
        kept: set[int] = {pk for (pk,) in await still.values_list("id")}
        lost = {lead_id for enrollment_id, lead_id in held.items() if enrollment_id not in kept}
        if lost:
            log.info("%d leads changed while being sent to: their new state kept", len(lost))
            changes.forget(lost)
        await changes.write()
