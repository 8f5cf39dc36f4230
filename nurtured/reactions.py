"""What a lead's behaviour does: event -> score -> stream transition, stop or alert.

Clicks and opens (tracking), replies, auto-replies, bounces and unsubscribe requests
(inbox) all arrive here as ``Signal``s. ``react`` records each as an Event, scores it,
fires the lead's stream transitions and changes its status, all in one transaction, and
says which signals need a sales alert; the caller sends those after the commit.

Machine signals (scanners, image proxies) are recorded and nothing more.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tortoise.transactions import in_transaction

from nurtured.app import App
from nurtured.config_sections import Scoring
from nurtured.db import insert_rows
from nurtured.enrollment import Changes, leave, received_content, settle
from nurtured.fit.apply import rescore_companies
from nurtured.inbox.dates import later_until, pause_until
from nurtured.lead_rows import LeadRow, read_leads, update_leads
from nurtured.models import (
    CURRENT,
    Enrollment,
    EnrollmentState,
    Event,
    EventKind,
    LeadStage,
    LeadStatus,
    ScoreChange,
)
from nurtured.sales.gate import missing_criteria
from nurtured.sales.handoff import nurture_stream
from nurtured.scheduler import place
from nurtured.scoring.behaviour import Points, add_points, behaviour_points, decayed
from nurtured.soft_bounces import SoftBounces
from nurtured.streams import Action, Stream

log = logging.getLogger(__name__)

MAILABLE = (LeadStatus.ACTIVE,)
# Reacting to a batch pauses (lets the event loop serve others) once it has run this long
# (seconds): a batch of clicks must not hold up the redirects. Measured with the tracking
# bench: 1 ms made the writer fall behind (each pause waits for every redirect ready to be
# answered) and the redirects then wait for room; 5 ms held them up (about 4,000/s, p99
# 48 ms); 2 ms gave about 5,100/s with p99 33 ms on the same machine.
SLICE = 0.002
# Feedback reports (RFC 5965, 6591) that do not say the lead marked us as spam.
NOT_COMPLAINTS = ("not-spam", "auth-failure")


@dataclass(frozen=True)
class Signal:
    lead_id: int
    kind: EventKind  # CLICK, OPEN, REPLY, AUTO_REPLY, BOUNCE, UNSUBSCRIBE, FORWARD, COMPLAINT
    at: datetime
    delivery_id: int | None = None
    tag: str | None = None  # a clicked link's tag, e.g. "interest:product-b"
    machine: bool = False  # a scanner or image proxy: recorded, never scored or acted on
    data: Mapping[str, Any] = field(default_factory=dict)  # kept in Event.data
    ref: str | None = None  # e.g. an inbound Message-ID: the same ref is recorded once


@dataclass(frozen=True)
class Outcome:
    signal: Signal
    score: int  # the lead's score after the signal
    action: str | None  # what happened to its stream or status, e.g. "move:product-b"
    alert: str | None  # "reply" | "sales_ready": the caller alerts sales


__all__ = ["Outcome", "Signal", "decayed", "points", "react"]


def scored(signal: Signal, scoring: Scoring) -> list[Points]:
    """What a signal is worth, rule by rule (nurtured.scoring.behaviour)."""
    return behaviour_points(str(signal.kind), scoring, tag=signal.tag,
                            intent=signal.data.get("intent"), machine=signal.machine)  # fmt: skip


def points(signal: Signal, scoring: Scoring) -> int:
    """What a signal is worth; machine signals are worth nothing."""
    return sum(p.points for p in scored(signal, scoring))


class _Pacer:
    """``await pace()``: pause if ``SLICE`` has gone by since the last pause."""

    def __init__(self) -> None:
        self.since = time.perf_counter()

    async def __call__(self) -> None:
        if time.perf_counter() - self.since >= SLICE:
            await asyncio.sleep(0)
            self.since = time.perf_counter()


class _Unloaded(Exception):
    """Reacting needed a current enrollment that was not read whole (see ``react``)."""


@dataclass
class _Lead:
    """One lead's state while a batch of signals is applied to it."""

    lead: LeadRow
    current: Enrollment | None
    received: set[str]
    dirty: bool = False
    # Set when only the stream of the current enrollment was read: using the enrollment
    # itself raises _Unloaded.
    light_stream: str | None = None

    @property
    def enrollment(self) -> Enrollment | None:
        if self.light_stream is not None:
            raise _Unloaded(self.lead.id)
        return self.current

    @enrollment.setter
    def enrollment(self, enrollment: Enrollment | None) -> None:
        self.current = enrollment

    @property
    def stream_id(self) -> str:
        if self.light_stream is not None:
            return self.light_stream
        return self.current.stream_id if self.current else ""


class _Batch:
    def __init__(self, app: App, state: dict[int, _Lead], soft: SoftBounces) -> None:
        self.app = app
        self.state = state
        self.soft = soft  # soft bounces in a row, per lead
        self.changes = Changes()
        self.events: list[dict[str, Any]] = []  # one per signal: Event fields
        self.scores: list[dict[str, Any]] = []  # ScoreChange fields: each points' rule and cause
        self.engaged: set[int] = set()  # companies with a newly engaged contact (colleagues)

    def stream(self, s: _Lead) -> Stream | None:
        return self.app.catalog.streams.get(s.stream_id) if s.stream_id else None

    def stop(self, s: _Lead, status: LeadStatus, at: datetime, reason: str) -> str:
        if s.enrollment is not None:
            leave(s.enrollment, at, reason, self.changes)
            self.changes.event(s.lead.id, EventKind.ENDED, at, stream_id=s.stream_id,
                               reason=reason, status=str(status))  # fmt: skip
            s.enrollment = None
        s.lead.status = status
        s.dirty = True
        log.info("lead %s: status -> %s (%s)", s.lead.email, status, reason)
        return str(status)

    def pause(self, s: _Lead, until: datetime | None, at: datetime, reason: str) -> str | None:
        enrollment = s.enrollment
        if enrollment is None or enrollment.state == EnrollmentState.HELD:
            return None
        enrollment.state = EnrollmentState.PAUSED
        enrollment.next_due_at = until  # None: until someone wakes it
        enrollment.lease = None
        self.changes.touch(enrollment)
        self.changes.event(s.lead.id, EventKind.PAUSED, at, stream_id=enrollment.stream_id,
                           until=until.isoformat() if until else None, reason=reason)  # fmt: skip
        log.info("lead %s: paused until %s (%s)", s.lead.email, until or "woken", reason)
        return "paused"

    def fire(self, s: _Lead, action: Action, at: datetime, reason: str) -> str | None:
        """Apply a stream transition to the lead's current enrollment."""
        if s.enrollment is None or s.lead.status not in MAILABLE:
            return None
        if action.kind == "move" and action.target:
            if action.target == s.stream_id or action.target not in self.app.catalog.streams:
                return None
            placement = place(self.app.catalog, action.target, 0, s.received)
            s.enrollment = settle(s.enrollment, placement, lead=s.lead.as_lead(), now=at,
                                  rules=self.app.rules, changes=self.changes,
                                  reason=reason)  # fmt: skip
            if s.enrollment.state == EnrollmentState.ENDED:
                s.enrollment = None
            return str(action)
        if action.kind == "pause":
            until = at + action.pause_for if action.pause_for else None
            return self.pause(s, until, at, reason) and str(action)
        if action.kind == "end":
            leave(s.enrollment, at, reason, self.changes)
            self.changes.event(s.lead.id, EventKind.ENDED, at, stream_id=s.stream_id,
                               reason=reason)  # fmt: skip
            s.enrollment = None
            return "end"
        return None

    def apply(self, signal: Signal) -> Outcome:
        s = self.state[signal.lead_id]
        lead, scoring = s.lead, self.app.settings.scoring
        stream = self.stream(s)
        data = dict(signal.data)
        if signal.tag:
            data["tag"] = signal.tag
        if signal.machine:
            data["machine"] = True
        self.events.append({"lead_id": lead.id, "delivery_id": signal.delivery_id,
                            "kind": signal.kind, "stream_id": s.stream_id, "data": data,
                            "occurred_at": signal.at, "ref": signal.ref})  # fmt: skip
        given = scored(signal, scoring)
        gained = sum(p.points for p in given)
        value = lead.score_value if lead.score_value is not None else float(lead.score)
        step = add_points(value, lead.score_at, signal.at, gained, lead.profile_score,
                          scoring.half_life)  # fmt: skip
        before, after, at = step.before, step.after, step.at
        if step.changed:
            if lead.score_at is None and gained > 0 and lead.company_id:
                self.engaged.add(lead.company_id)
            lead.score_value, lead.score_at, s.dirty = step.value, at, True
            lead.score = round(step.value)
        for p in given:
            self.scores.append({"lead_id": lead.id, "at": at, "rule": p.rule, "points": p.points,
                                "decays": True, "cause": p.cause[:300]})  # fmt: skip
        if signal.machine:
            return Outcome(signal, after, None, None)

        action: str | None = None
        alert: str | None = None
        kind = signal.kind
        was_mailable = lead.status in MAILABLE
        if kind == EventKind.CLICK and signal.tag and stream is not None:
            transition = stream.transitions.on_click.get(signal.tag)
            if transition is not None:
                action = self.fire(s, transition, signal.at, f"click {signal.tag}")
        elif kind == EventKind.REPLY and data.get("intent") in ("later", "not_interested"):
            # "Not now, maybe in March": told nothing more until then, and sales are not
            # bothered; "not interested": the long-term stream, no alert either.
            action = self.after_no(s, data, signal.at)
        elif kind == EventKind.REPLY:
            alert = "reply"
            on_reply = stream.transitions.on_reply if stream is not None else None
            if on_reply is not None and on_reply.kind in ("move", "pause"):
                action = self.fire(s, on_reply, signal.at, "reply")  # nurture goes on
            elif lead.status in MAILABLE:
                action = self.stop(s, LeadStatus.REPLIED, signal.at, "replied")
        elif kind == EventKind.AUTO_REPLY:
            until = pause_until(data.get("until"), signal.at)
            until = until or signal.at + self.app.settings.inbox.auto_reply_pause
            action = self.pause(s, until, signal.at, "auto-reply")
        elif kind == EventKind.BOUNCE and not data.get("delivered"):  # (ours got it: no bounce)
            # In a row: a policy block (5.7.x) never adds up; a delivery sent since without
            # a bounce starts again (see soft_bounces.py).
            soft = self.soft.add(signal)
            limit = self.app.settings.inbox.soft_bounce_limit
            if lead.status in MAILABLE and (data.get("hard") or soft >= limit):
                why = "hard bounce" if data.get("hard") else f"{soft} soft bounces in a row"
                action = self.stop(s, LeadStatus.BOUNCED, signal.at, why)
        elif kind == EventKind.UNSUBSCRIBE and lead.status != LeadStatus.UNSUBSCRIBED:
            action = self.stop(s, LeadStatus.UNSUBSCRIBED, signal.at, "unsubscribed")
        elif (kind == EventKind.COMPLAINT and lead.status != LeadStatus.UNSUBSCRIBED
              and data.get("feedback_type") not in NOT_COMPLAINTS):  # fmt: skip
            # Marked as spam: suppressed at once, like an unsubscribe ("not-spam" and
            # "auth-failure" reports are no complaint: recorded, nothing more).
            action = self.stop(s, LeadStatus.UNSUBSCRIBED, signal.at, "complaint")

        stream = self.stream(s)
        if action is None and stream is not None and after > before:
            crossed = [(at, a) for at, a in stream.transitions.on_score if before < at <= after]
            if crossed:
                at_, transition = max(crossed, key=lambda c: c[0])
                action = self.fire(s, transition, signal.at, f"score {at_}")
        # A reply that carries the lead over the threshold hands it off too (it stopped the
        # stream above, as any reply does).
        # Crossing the line, or already over it on profile points alone (those count from
        # the lead's next scored signal on).
        over = before < scoring.sales_ready <= after or (
            gained > 0 and after >= scoring.sales_ready
            and lead.stage in (LeadStage.NEW, LeadStage.NURTURING)
        )  # fmt: skip
        if over and was_mailable and lead.status in (*MAILABLE, LeadStatus.REPLIED):
            handoff = self.app.settings.handoff
            lacks = missing_criteria(handoff.require, lead.fields(), title=lead.title,
                                     authority_titles=handoff.authority_titles,
                                     disqualified=lead.stage == LeadStage.DISQUALIFIED)  # fmt: skip
            self.changes.event(lead.id, EventKind.SALES_READY, signal.at,
                               stream_id=s.stream_id, score=after, lacks=lacks)  # fmt: skip
            self.stage(s, LeadStage.MQL, signal.at, f"score {after} >= {scoring.sales_ready}",
                       lacks=lacks)  # fmt: skip
            if not lacks:
                action = self.stop(s, LeadStatus.SALES, signal.at, "sales-ready")
                alert = "sales_ready"  # the alert hands it off (nurtured.sales), reply and all
            elif handoff.collect_stream and s.stream_id != handoff.collect_stream:
                log.info("lead %s: MQL, lacks %s", lead.email, ", ".join(lacks))
                action = self.fire(s, Action("move", handoff.collect_stream), signal.at,
                                   f"MQL lacks {', '.join(lacks)}")  # fmt: skip
        return Outcome(signal, after, action, alert)

    def after_no(self, s: _Lead, data: Mapping[str, Any], at: datetime) -> str | None:
        """A reply that says later (pause until the date it names) or not interested (the
        long-term stream: [handoff] returns' not_interested, else default, else the
        lowest-priority stream)."""
        if data.get("intent") == "later":
            until = later_until(data.get("later_until"), at)
            return self.pause(s, until, at, "reply: later") if until else None
        target = nurture_stream(self.app, "not_interested")
        if target is None:
            return None
        return self.fire(s, Action("move", target), at, "reply: not interested")

    def stage(self, s: _Lead, to: LeadStage, at: datetime, cause: str, **data: Any) -> None:
        if s.lead.stage == to:
            return
        fields: dict[str, object] = {"from": str(s.lead.stage), "to": str(to), "cause": cause}
        self.changes.event(s.lead.id, EventKind.STAGE, at, stream_id=s.stream_id,
                           **fields, **data)  # type: ignore[arg-type]  # fmt: skip
        log.info("lead %s: stage %s -> %s (%s)", s.lead.email, s.lead.stage, to, cause)
        s.lead.stage = to
        s.dirty = True


def _may_move(app: App, lead: LeadRow, stream_id: str, signals: Sequence[Signal]) -> bool:
    """Whether ``signals`` might change the lead's current enrollment in ``stream_id``.

    False only for human clicks and opens that fire no on_click rule and cannot reach an
    on_score threshold or sales_ready (decay only lowers a positive score, so the score
    can reach no more than max(score, 0) plus the points) and for machine signals.
    """
    stream = app.catalog.streams.get(stream_id)
    scoring = app.settings.scoring
    reach = max(lead.score + lead.profile_score, 0)
    for signal in signals:
        if signal.machine:
            continue
        if signal.kind not in (EventKind.CLICK, EventKind.OPEN):
            return True
        if stream and signal.tag and signal.tag in stream.transitions.on_click:
            return True
        reach += max(points(signal, scoring), 0)
    on_score = stream.transitions.on_score if stream else ()
    thresholds = [scoring.sales_ready, *(at for at, _ in on_score)]
    return reach >= min(thresholds)


async def react(app: App, signals: Sequence[Signal]) -> list[Outcome]:
    """Record, score and act on ``signals`` in one transaction; outcomes in the same order.

    Signals for leads that do not exist are dropped with a warning. A signal whose ``ref``
    was already recorded (an inbound message processed before a crash) is skipped.

    Reading whole Enrollment objects was most of the cost of a batch of clicks, so only
    the leads ``_may_move`` picks get theirs read whole; should any other lead turn out
    to need its enrollment after all, the batch is applied again with every enrollment
    read whole (nothing is written before the whole batch has been applied).
    """
    if not signals:
        return []
    async with in_transaction():
        try:
            return await _react(app, signals, light=True)
        except _Unloaded as exc:
            log.debug("lead %s needed its enrollment after all: every one read whole", exc)
            return await _react(app, signals, light=False)


async def _react(app: App, signals: Sequence[Signal], *, light: bool) -> list[Outcome]:
    refs = [s.ref for s in signals if s.ref]
    seen: set[str] = set()
    if refs:
        seen = {ref for (ref,) in await Event.filter(ref__in=refs).values_list("ref")}
    lead_ids = {s.lead_id for s in signals}
    leads, streams = await read_leads(lead_ids)
    whole = lead_ids
    if light:
        by_lead: dict[int, list[Signal]] = defaultdict(list)
        for signal in signals:
            by_lead[signal.lead_id].append(signal)
        whole = {
            lead.id
            for lead in leads
            if lead.id in streams and _may_move(app, lead, streams[lead.id], by_lead[lead.id])
        }
    current: dict[int, Enrollment] = {}
    received: dict[int, set[str]] = defaultdict(set)
    if whole:
        enrollments = await Enrollment.filter(lead_id__in=whole, state__in=CURRENT)
        current = {e.lead_id: e for e in enrollments}
        received = await received_content(whole)
    soft = await SoftBounces.load([s for s in signals if s.kind == EventKind.BOUNCE])
    state = {
        lead.id: _Lead(lead, current.get(lead.id), received[lead.id],
                       light_stream=None if lead.id in whole else streams.get(lead.id))
        for lead in leads
    }  # fmt: skip
    batch = _Batch(app, state, soft)
    outcomes: list[Outcome] = []
    pace = _Pacer()
    for signal in signals:
        await pace()
        if signal.lead_id not in state:
            log.warning("signal %s for unknown lead %d dropped", signal.kind, signal.lead_id)
            continue
        if signal.ref and signal.ref in seen:
            log.info("signal %s %s already recorded: skipped", signal.kind, signal.ref)
            continue
        if signal.ref:
            seen.add(signal.ref)
        outcomes.append(batch.apply(signal))
    await insert_rows(Event, batch.events, pace=pace)
    await insert_rows(ScoreChange, batch.scores, pace=pace)
    await batch.changes.write()
    await update_leads([s.lead for s in state.values() if s.dirty])
    if batch.engaged:  # their colleagues' points change (scoring.profile.colleagues)
        await rescore_companies(batch.engaged, app, max(s.at for s in signals))
    return outcomes
