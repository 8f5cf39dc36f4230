"""``nurtured simulate``: a lead's journey, run by the real engine on a throwaway copy.

The leads' rows are copied into a temporary SQLite database (``sandbox``), mail goes to a
transport that keeps it, and a fake clock steps from one due time to the next (the
scheduler says when that is, as for the daemon). Each step is what ``run --once`` does at
that moment: the engine sends what is due (send windows, holidays, waits, moves and
pauses included). Scripted behaviour enters where the real thing does: a click as the
tracking server records it (``bots.classify_click``, then ``reactions.react``, then the
sales alert), a reply or an out-of-office as an email through the inbox's
``process_messages`` (classification, matching by In-Reply-To, what the reply means).
So the journey shows what nurtured would do, not a second implementation of it.

Nothing here touches the real database, the outbox or an SMTP server.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

from nurtured import jobs
from nurtured.alerts import AlertRequest, alert_many, alert_sales
from nurtured.app import App, Runtime
from nurtured.bots import classify_click
from nurtured.cockpit.journey import Journey, Row
from nurtured.cockpit.sandbox import CapturingTransport, copied_leads, sandbox_db, scratch_dir
from nurtured.cockpit.script import Script
from nurtured.exceptions import LeadError
from nurtured.inbox.process import process_messages
from nurtured.intake import make_input, upsert
from nurtured.lease import DUE_STATES
from nurtured.models import Delivery, DeliveryStatus, Enrollment, Event, EventKind, Lead, Link
from nurtured.reactions import Signal, react
from nurtured.scheduler import lead_zone

__all__ = ["simulate"]

MAX_STEPS = 20_000  # a guard: a journey of 90 days takes a few dozen steps
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) nurtured-simulate"
OOO_DELAY = timedelta(minutes=2)  # an out-of-office answers within minutes
HYPOTHETICAL = "someone@example.com"
# Events a pass records before it sends the lead's email; the others come after it.
BEFORE_SENDING = (EventKind.ENROLLED, EventKind.RESUMED)


@dataclass(order=True)
class _Due:
    at: datetime
    seq: int
    run: Callable[[], Awaitable[None]] = field(compare=False)


class _Simulation:
    def __init__(self, app: App, script: Script, start: datetime, until: datetime) -> None:
        self.app, self.script, self.until = app, script, until
        self.now = start
        self.transport = CapturingTransport()
        self.runtime = Runtime(app, self.transport, clock=lambda: self.now)
        self.engine = jobs.make_engine(self.runtime)
        self.queue: list[_Due] = []
        self.seq = itertools.count()
        self.last_event = 0
        self.since = start  # emails sent from then on are the journey's
        self.seen: set[int] = set()  # ids of those sent at ``since`` already taken in
        self.rows: list[Row] = []
        self.leads: dict[int, tuple[str, str]] = {}  # id -> email, zone
        self.notes: list[str] = []
        self.clicked: set[tuple[int, int]] = set()  # (lead id, click index)

    def at(self, when: datetime, run: Callable[[], Awaitable[None]]) -> None:
        heapq.heappush(self.queue, _Due(when, next(self.seq), run))

    async def walk(self) -> None:
        """Step the clock from due time to due time (and scripted moment) up to ``until``."""
        await self.engine.recover(self.now)
        await self._collect()
        stuck = 0
        for _ in range(MAX_STEPS):
            await self.engine.run_due(self.now)
            await self._collect()
            soonest = await self._soonest()
            wake = min(soonest or self.until, self.until)
            if self.queue and self.queue[0].at <= wake:
                self.now = max(self.queue[0].at, self.now)
                while self.queue and self.queue[0].at <= self.now:
                    await heapq.heappop(self.queue).run()
                    await self._collect()
                continue
            if soonest is not None and soonest <= self.now:
                stuck += 1  # still due after a pass (e.g. moved on at once): once more
                if stuck <= 3:
                    continue
                self.notes.append(f"stopped at {self.now:%Y-%m-%d %H:%M} UTC: still due "
                                  "after several passes")  # fmt: skip
                break
            if wake <= self.now:
                break
            self.now, stuck = wake, 0
        for n, click in enumerate(self.script.clicks):
            if not any(key[1] == n for key in self.clicked):
                self.notes.append(f"--click {click.content}:{click.tag}: {click.content} was "
                                  "not sent in the simulation, so never clicked")  # fmt: skip
        left = [d for d in self.queue if d.at > self.until]
        if left:
            self.notes.append(f"{len(left)} scripted event(s) fall after --until: not run")

    async def _soonest(self) -> datetime | None:
        due = Enrollment.filter(state__in=DUE_STATES, next_due_at__not_isnull=True)
        rows = await due.order_by("next_due_at").limit(1).values_list("next_due_at")
        return rows[0][0] if rows and isinstance(rows[0][0], datetime) else None

    async def _collect(self) -> None:
        """Take in what the last step did, in the order it happened, and schedule the
        scripted clicks and out-of-office replies that the new emails call for."""
        # What was sent since the last look: new deliveries and retried ones alike.
        recent = await Delivery.filter(sent_at__gte=self.since).order_by("id"
                                       ).select_related("lead")  # fmt: skip
        sent = [d for d in recent if d.id not in self.seen]
        self.since = self.now
        self.seen = {d.id for d in recent if d.sent_at is not None and d.sent_at >= self.now}
        events = await Event.filter(id__gt=self.last_event).order_by("id")
        await self._know({d.lead_id for d in sent} | {e.lead_id for e in events})
        self.last_event = max([self.last_event, *(e.id for e in events)])
        before = [e for e in events if e.kind in BEFORE_SENDING]
        after = [e for e in events if e.kind not in BEFORE_SENDING]
        self.rows += [self._event_row(e) for e in before]
        self.rows += [self._email_row(d) for d in sent]
        self.rows += [self._event_row(e) for e in after]
        for delivery in sent:
            assert delivery.sent_at is not None
            for n, click in enumerate(self.script.clicks):
                key = (delivery.lead_id, n)
                if click.content == delivery.content_id and key not in self.clicked:
                    self.clicked.add(key)
                    self.at(delivery.sent_at + click.after, self._clicker(delivery, click.tag))
            zone = lead_zone(delivery.lead.timezone, self.app.rules)
            day = delivery.sent_at.astimezone(zone).date()
            for span in self.script.ooo:
                if span.covers(day):
                    body = (
                        f"Thank you for your email. I am out of the office until "
                        f"{span.last.day} {span.last:%B %Y} with limited access to email."
                    )
                    self.at(delivery.sent_at + OOO_DELAY,
                            self._mailer(delivery, body, auto=True))  # fmt: skip

    async def _know(self, lead_ids: set[int]) -> None:
        """Leads that appear on the way (a referral in a reply becomes one) join the journey."""
        new = lead_ids - set(self.leads)
        for lead in await Lead.filter(id__in=new).order_by("id") if new else []:
            self.leads[lead.id] = (lead.email, str(lead_zone(lead.timezone, self.app.rules)))

    def _email_row(self, d: Delivery) -> Row:
        assert d.sent_at is not None
        email, zone = self.leads[d.lead_id]
        return Row(d.sent_at, email, zone, "email", d.stream_id, d.content_id, d.subject)

    def _event_row(self, e: Event) -> Row:
        email, zone = self.leads[e.lead_id]
        return Row(e.occurred_at, email, zone, str(e.kind), e.stream_id, data=e.data or {})

    def _clicker(self, delivery: Delivery, tag: str) -> Callable[[], Awaitable[None]]:
        async def click() -> None:
            link = await Link.filter(delivery_id=delivery.id, tag=tag).order_by("index").first()
            if link is None:
                self.notes.append(f"{delivery.content_id} has no link tagged {tag}: "
                                  "that click cannot happen")  # fmt: skip
                return
            bots = self.app.settings.bots
            verdict = classify_click(method="GET", user_agent=BROWSER, at=self.now,
                                     sent_at=delivery.sent_at, click_grace=bots.click_grace,
                                     extra_agents=bots.scanner_agents)  # fmt: skip
            data = {"user_agent": BROWSER, "url": link.url, "link": link.index}
            signal = Signal(delivery.lead_id, EventKind.CLICK, self.now, delivery.id,
                            tag=link.tag, machine=verdict.machine, data=data)  # fmt: skip
            for outcome in await react(self.app, [signal]):
                if outcome.alert:
                    await alert_sales(self.app, self.transport, delivery.lead_id,
                                      outcome.alert, self.now)  # fmt: skip

        return click

    def _mailer(self, delivery: Delivery, text: str, *, auto: bool = False
                ) -> Callable[[], Awaitable[None]]:  # fmt: skip
        async def send() -> None:
            raw = self._inbound(delivery, text, auto=auto)
            await process_messages(self.runtime, [raw])

        return send

    def _inbound(self, delivery: Delivery, text: str, *, auto: bool) -> bytes:
        """What the lead's mail program would send back to that email."""
        msg = EmailMessage()
        msg["From"] = delivery.lead.email
        msg["To"] = self.app.settings.sender.reply_to_for(delivery.token)
        msg["Subject"] = ("Out of Office: " if auto else "Re: ") + delivery.subject
        msg["Date"] = format_datetime(self.now)
        msg["Message-ID"] = f"<simulated-{next(self.seq)}@simulate.invalid>"
        msg["In-Reply-To"] = msg["References"] = delivery.message_id
        if auto:
            msg["Auto-Submitted"] = "auto-replied"
        msg.set_content(text)
        return msg.as_bytes()

    def reply(self, lead_id: int, text: str) -> Callable[[], Awaitable[None]]:
        async def answer() -> None:
            last = (await Delivery.filter(lead_id=lead_id, status=DeliveryStatus.SENT,
                                          sent_at__lte=self.now)
                    .order_by("-sent_at", "-id").select_related("lead").first())  # fmt: skip
            if last is None:
                self.notes.append(f"reply {text!r} at {self.now:%Y-%m-%d %H:%M} UTC: no email "
                                  "had been sent to answer")  # fmt: skip
                return
            await self._mailer(last, text)()

        return answer


async def _add_hypothetical(sim: _Simulation, fields: Mapping[str, str], now: datetime) -> None:
    """The lead as ``leads add`` would create it; a sales source goes to sales with an alert."""
    app = sim.app
    try:
        item = make_input({"email": HYPOTHETICAL, **fields})
    except LeadError as exc:
        raise LeadError(f"--as: {exc}") from None
    report, _ = await upsert([item], app.catalog, app.rules, now,
                             sales_sources=app.settings.intake.sales_sources)  # fmt: skip
    if report.to_sales:
        requests = [AlertRequest(lead_id, "consult") for lead_id in report.to_sales]
        await alert_many(app, sim.transport, requests, now)


async def simulate(
    app: App,
    script: Script,
    start: datetime,
    until: datetime,
    *,
    email: str | None = None,
    hypothetical: Mapping[str, str] | None = None,
    sample: int = 0,
) -> Journey:
    """The journey from ``start`` to ``until`` of lead ``email``, of a hypothetical lead
    with ``hypothetical``'s fields, or of ``sample`` active leads of the database."""
    async with scratch_dir() as scratch:
        rows = {}
        if hypothetical is None:
            rows = await copied_leads(app.settings.database.url, scratch, email, sample)
        async with sandbox_db(scratch, rows):
            sim = _Simulation(app, script, start, until)
            sim.last_event = await _last_id(Event)
            already = await Delivery.filter(sent_at__gte=start).values_list("id")
            sim.seen = {pk for (pk,) in already}  # sent for real after --from: not shown
            if hypothetical is not None:
                await _add_hypothetical(sim, hypothetical, start)
            for lead in await Lead.all().order_by("id"):
                sim.leads[lead.id] = (lead.email, str(lead_zone(lead.timezone, app.rules)))
                for reply in script.replies:
                    sim.at(reply.at, sim.reply(lead.id, reply.text))
            await sim.walk()
            journey = Journey(start, until, [email for email, _ in sim.leads.values()])
            journey.rows, journey.notes = sim.rows, sim.notes
            journey.mail = len(sim.transport.sent)
            return journey


async def _last_id(model: type[Event]) -> int:
    rows = await model.all().order_by("-id").limit(1).values_list("id")
    return int(rows[0][0]) if rows else 0
