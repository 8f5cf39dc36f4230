"""Which variant each job of a batch sends, and when a winner rule has decided.

On the send path, so batched: nothing at all for a batch without split-test steps; else
one read of the variants stored on retried deliveries (a retry sends what was claimed)
and, for steps with a winner rule not yet decided, at most every ``RECHECK`` of the
passes' own time: one read of winners recorded by any worker and two reads of the counts
(``splits.counts``). A decision is an event with a unique ref, so however many workers
decide at once, one winner is recorded and all of them send it from then on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

from nurtured.db import insert_rows
from nurtured.models import Delivery, Event, EventKind
from nurtured.outcomes import Job
from nurtured.splits.counts import StepKey, VariantCounts, variant_counts
from nurtured.splits.spec import Variant, choose, split_key
from nurtured.splits.stats import decide

log = logging.getLogger(__name__)

RECHECK: Final = timedelta(minutes=10)


def winner_ref(key: StepKey) -> str:
    return f"split-winner:{key[0]}:{key[1]}"


class SplitTests:
    """Per engine: the winners known so far and when each open test was last checked."""

    def __init__(self) -> None:
        self.winners: dict[StepKey, str] = {}
        self._checked: dict[StepKey, datetime] = {}

    async def assign(self, jobs: Sequence[Job], now: datetime) -> None:
        """Set ``job.variant`` on every job whose step has variants."""
        split = [job for job in jobs if job.step.variants]
        if not split:
            return
        retried = [job.delivery_id for job in split if job.delivery_id is not None]
        stored: dict[int, str] = {}
        if retried:
            stored = dict(await Delivery.filter(id__in=retried).values_list("id", "variant"))
        await self._refresh(split, now)
        for job in split:
            by_id = {v.id: v for v in job.step.variants}
            if job.delivery_id is not None:
                # What the claim says: the stored variant, or the step's own email if the
                # claim predates the variants (or its variant was since removed).
                job.variant = by_id.get(stored.get(job.delivery_id, ""))
                continue
            key = (job.stream.id, job.step.content)
            winner = by_id.get(self.winners.get(key, ""))
            job.variant = winner or choose(job.step.variants, split_key(job.lead.email, *key))

    async def _refresh(self, split: Sequence[Job], now: datetime) -> None:
        due = {
            (job.stream.id, job.step.content): job
            for job in split
            if job.step.winner is not None
            and (job.stream.id, job.step.content) not in self.winners
            and self._checked.get((job.stream.id, job.step.content), now - RECHECK) <= now - RECHECK
        }  # fmt: skip
        if not due:
            return
        for key in due:
            self._checked[key] = now
        await self._read_winners(list(due))
        undecided = [key for key in due if key not in self.winners]
        if not undecided:
            return
        counts = await variant_counts(undecided)
        rows = []
        for key in undecided:
            job = due[key]
            rows.extend(_decision(key, job, counts.get(key, {}), now))
        if rows:
            await insert_rows(Event, rows, ignore_conflicts=True)
            await self._read_winners(undecided)
            for key in undecided:
                if key in self.winners:
                    log.info("split test %s/%s: variant %s won; only it is sent from now on",
                             key[0], key[1], self.winners[key])  # fmt: skip

    async def _read_winners(self, keys: list[StepKey]) -> None:
        refs = {winner_ref(key): key for key in keys}
        for ref, data in await Event.filter(
            kind=EventKind.SPLIT_WINNER, ref__in=list(refs)
        ).values_list("ref", "data"):
            if isinstance(data, dict) and isinstance(data.get("variant"), str):
                self.winners[refs[ref]] = data["variant"]


def _decision(
    key: StepKey, job: Job, counts: dict[str, VariantCounts], now: datetime
) -> list[dict[str, object]]:
    """The event row of the winner rule's decision for one step, if it decides."""
    rule = job.step.winner
    assert rule is not None
    variants: tuple[Variant, ...] = job.step.variants
    tallies = {v.id: counts.get(v.id, VariantCounts()).tally(rule.metric) for v in variants}
    decision = decide(tallies, min_sample=rule.min_sample, confidence=rule.confidence)
    if decision is None:
        return []
    data = {
        "content": key[1],
        "variant": decision.winner,
        "metric": rule.metric,
        "p_value": round(decision.p_value, 6),
        "confidence": rule.confidence,
        "min_sample": rule.min_sample,
        "tallies": {v: [t.hits, t.sent] for v, t in tallies.items()},
        "note": "decided while this lead's email was prepared",
    }
    return [{"lead_id": job.lead.id, "kind": EventKind.SPLIT_WINNER, "stream_id": key[0],
             "data": data, "occurred_at": now, "ref": winner_ref(key)}]  # fmt: skip
