"""The walk: due enrollments -> render -> claim -> send -> record -> next step.

One batch costs a fixed number of statements whatever its size: one lease statement
(``nurtured.lease``: due scan, update and read-back), one read each of leads (with
companies) and deliveries, one claim transaction (prepared inserts of deliveries and
links), the SMTP transactions (``nurtured.sending``), and one record transaction of
prepared updates. Nothing is per lead except rendering and sending.

The no-repeat guarantee: a delivery row UNIQUE (lead, content) is committed ("claimed")
before its SMTP transaction starts, and marked "sending" (group-committed, see
``nurtured.marks``) right before that transaction. After a crash, a "claimed" row is sent
after all and a "sending" one becomes "unknown", reported, never resent (``recover``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from nurtured.config import Settings
from nurtured.data.suppression import Gate
from nurtured.db import insert_rows
from nurtured.enrollment import LEASE, Changes, leave, settle, wake_held
from nurtured.exceptions import (
    ClaimLost,
    ConfigError,
    HeldBack,
    PermanentSendError,
    SendError,
    TransientSendError,
)
from nurtured.lease import DUE_STATES, holder_is_dead, holder_of, lease_due
from nurtured.limits import LimitedTransport
from nurtured.mailer import Transport
from nurtured.marks import StartMarks
from nurtured.message import build_message_bytes, domain_of, make_message_id
from nurtured.models import (
    Delivery,
    DeliveryStatus,
    Enrollment,
    EnrollmentState,
    EventKind,
    Lead,
    LeadStatus,
    Link,
)
from nurtured.outcomes import Job, PassReport, record, save
from nurtured.render import Renderer
from nurtured.scheduler import Next, SendRules, lead_zone, place
from nurtured.sending import SendPool
from nurtured.splits.assign import SplitTests
from nurtured.streams import Catalog, Step
from nurtured.timing import next_send_time
from nurtured.tokens import new_delivery_token
from nurtured.views import company_view, lead_view

log = logging.getLogger(__name__)

# Synchronous work (plan, render, record) is done this many emails at a time, yielding to
# the event loop in between: a batch of 500 rendered in one go held the loop ~100 ms, and
# with it every click redirect of the tracking server on the same loop.
SLICE = 50
READ = 125  # leads read per query in a batch


@dataclass
class Batch:
    """A leased, planned and claimed batch, waiting to be sent."""

    picked: int  # enrollments leased
    jobs: list[Job]
    received: dict[int, set[str]]
    changes: Changes
    lease: str | None
    held: dict[int, int]  # enrollment id -> lead id


class Engine:
    def __init__(
        self,
        *,
        settings: Settings,
        catalog: Catalog,
        renderer: Renderer,
        transport: Transport,
        splits: SplitTests | None = None,  # kept across passes (Runtime.splits)
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.renderer = renderer
        self.transport = transport
        sending = settings.sending
        self.rules = SendRules(sending.window, sending.timezone, sending.holidays)
        self.batch_size = sending.batch_size
        self.domain = domain_of(settings.sender.address)
        self.marks = StartMarks()
        self.suppression = Gate(settings.suppression)
        self.splits = splits if splits is not None else SplitTests()
        self.limits = transport.limits if isinstance(transport, LimitedTransport) else None

    # -- one pass -------------------------------------------------------------------------

    async def recover(self, now: datetime, gone: Collection[str] = ()) -> int:
        """Take back claims cut off by a crash; return how many.

        A claim whose SMTP transaction had not begun (``claimed``) is certainly not
        delivered: it becomes a retry (same Message-ID) and is sent by the next pass. One
        whose transaction had begun (``sending``) may have been delivered: it becomes
        ``unknown``, reported, never resent. Claims of a process of this machine that is
        gone are taken back at once (a daemon restarted by its supervisor); anyone
        else's only when their lease has run out, or at once when named in ``gone``
        (lease holders, ``host-pid-start``, known to be dead: scale-out workers whose
        heartbeat in Redis stopped).
        """
        dead = await self._dead_holders(now, gone)
        counts = await self._take_back(Q(lead_id__in=list(dead.values())), now) if dead else {}
        if dead:
            await Enrollment.filter(id__in=list(dead)).update(lease=None, next_due_at=now)
        expired = await self._take_back(Q(claimed_at__lt=now - LEASE), now)
        requeued = counts.get("requeued", 0) + expired["requeued"]
        unknown = counts.get("unknown", 0) + expired["unknown"]
        if requeued or unknown:
            log.warning("recovered cut-off sends: %d claimed but never handed to SMTP, sent "
                        "again; %d cut off mid-transaction, marked unknown, not resent",
                        requeued, unknown)  # fmt: skip
        woken = await wake_held(self.catalog, now)
        if woken:
            log.info("%d held leads woken: their streams have new steps", woken)
        return requeued + unknown

    async def _dead_holders(self, now: datetime, gone: Collection[str] = ()) -> dict[int, int]:
        """Enrollments (id -> lead id) leased by a process of this machine that is gone.

        A live lease ends within ``LEASE`` from now, so the scan is the index range of
        what is leased or due in the next ``LEASE``, not the whole table."""
        leased = await Enrollment.filter(
            state__in=DUE_STATES, next_due_at__gt=now, next_due_at__lte=now + LEASE,
            lease__not_isnull=True,
        ).values_list("id", "lead_id", "lease")  # fmt: skip
        return {pk: lead_id for pk, lead_id, lease in leased
                if holder_is_dead(lease) or holder_of(lease) in gone}  # fmt: skip

    async def _take_back(self, where: Q, now: datetime) -> dict[str, int]:
        async with in_transaction():
            requeued = await Delivery.filter(where, status=DeliveryStatus.CLAIMED).update(
                status=DeliveryStatus.DEFERRED, retry_at=now,
                error="claimed but never handed to SMTP (cut off): sent again",
            )  # fmt: skip
            unknown = await Delivery.filter(where, status=DeliveryStatus.SENDING).update(
                status=DeliveryStatus.UNKNOWN, error="interrupted during sending"
            )
        return {"requeued": requeued, "unknown": unknown}

    async def run_due(
        self, now: datetime, *, max_batches: int = 10_000, stop: asyncio.Event | None = None
    ) -> PassReport:
        """Process everything due at ``now``, batch after batch (until ``stop`` is set).

        Batches overlap: while one batch's emails are being sent, the next one is leased,
        read, rendered and claimed, and the one before is recorded and saved; the senders
        (``nurtured.sending``) go from one batch's emails to the next without waiting, so
        the database and the SMTP connections are both kept busy. The batches are
        disjoint (each holds its own lease) and every batch is finished (sent, recorded,
        saved) before this returns, also on errors.
        """
        report = PassReport()
        finishing: list[asyncio.Task[None]] = []
        try:
            async with self._pool(now) as pool:
                for _ in range(max_batches):
                    if stop is not None and stop.is_set():
                        break
                    batch = await self._prepare(now, report)
                    if batch is None:
                        break
                    # Waits while the previous batch is still queued: preparing runs one
                    # batch ahead of sending, never more.
                    sent = await pool.submit(batch.jobs)
                    finishing.append(asyncio.create_task(self._finish(batch, sent, now, report)))
                    for task in [task for task in finishing if task.done()]:
                        finishing.remove(task)
                        task.result()  # a failed save stops the pass (the rest are awaited)
                    if batch.picked < self.batch_size:
                        break
        finally:
            # Never abandon a batch mid-send: its claims are committed, its outcomes must
            # be. The pool has tried every job; a cancellation waits for the saves too.
            if finishing:
                await asyncio.shield(asyncio.gather(*finishing))
            await self.marks.drain()
        if report.counts:
            log.debug("pass at %s: %s", now.isoformat(), report.summary())  # run says it
        return report

    async def process_batch(self, now: datetime, report: PassReport) -> int:
        """Lease up to batch_size due enrollments and walk each one step; return how many."""
        batch = await self._prepare(now, report)
        if batch is None:
            return 0
        async with self._pool(now) as pool:
            sent = await pool.submit(batch.jobs)
        await self._finish(batch, sent, now, report)
        await self.marks.drain()
        return batch.picked

    def _pool(self, now: datetime) -> SendPool[Job]:
        """Two senders per SMTP connection: one builds its message while the other's is
        on the wire; each builds a message only when about to send it."""
        workers = 2 * max(1, getattr(self.transport, "pool_size", 1))
        return SendPool(lambda job: self._send_one(job, now), workers, depth=self.batch_size)

    async def _prepare(self, now: datetime, report: PassReport) -> Batch | None:
        """Lease, read, plan, render and claim a batch; None when nothing is due."""
        enrollments = await self._lease_due(now)
        if not enrollments:
            return None
        lease = enrollments[0].lease
        held = {e.id: e.lead_id for e in enrollments}
        lead_ids = {e.lead_id for e in enrollments}
        leads: dict[int, Lead] = {}
        ordered = sorted(lead_ids)
        # A few reads of READ rows, not one of the batch: Tortoise makes the models in one
        # go per query, and the tracking server shares this loop (the click p99 under load).
        for start in range(0, len(ordered), READ):
            chunk = ordered[start : start + READ]
            for lead in await Lead.filter(id__in=chunk).select_related("company"):
                leads[lead.id] = lead
        received: dict[int, set[str]] = {lead_id: set() for lead_id in lead_ids}
        deferred: dict[tuple[int, str], tuple[int, str, str, int]] = {}
        for row in await Delivery.filter(lead_id__in=lead_ids).values_list(
            "lead_id", "content_id", "status", "id", "token", "message_id", "attempts"
        ):
            lead_id, content_id, status, delivery_id, token, message_id, attempts = row
            if status == DeliveryStatus.DEFERRED:
                deferred[(lead_id, content_id)] = (delivery_id, token, message_id, attempts)
            else:
                received[lead_id].add(content_id)

        changes = Changes()
        jobs: list[Job] = []
        blocked = await self.suppression.leads(leads.values())  # the final gate: one query
        for n, enrollment in enumerate(enrollments, 1):
            lead = leads[enrollment.lead_id]
            if lead.id in blocked:
                leave(enrollment, now, f"suppressed ({blocked[lead.id]})", changes)
                report.counts["suppressed"] += 1
                continue
            job = self._plan(enrollment, lead, received[lead.id], deferred, now, changes, report)
            if job is not None:
                jobs.append(job)
            if n % SLICE == 0:
                await asyncio.sleep(0)  # the tracking server shares this loop: let it answer

        await self.splits.assign(jobs, now)  # batched: a fixed number of reads, if any
        rendered: list[Job] = []
        for start in range(0, len(jobs), SLICE):
            rendered += self._render(jobs[start : start + SLICE], now, changes, report)
            await asyncio.sleep(0)
        jobs = await self._claim(rendered, now, report)
        return Batch(len(enrollments), jobs, received, changes, lease, held)

    async def _finish(
        self, batch: Batch, sent: asyncio.Future[None], now: datetime, report: PassReport
    ) -> None:
        """Once every email of a batch has been tried, record and save every outcome."""
        await sent
        retry = self.settings.sending.retry
        for start in range(0, len(batch.jobs), SLICE):
            record(batch.jobs[start : start + SLICE], batch.received, now, batch.changes, report,
                   catalog=self.catalog, rules=self.rules, retry=retry)  # fmt: skip
            await asyncio.sleep(0)
        await save(batch.jobs, now, batch.changes, batch.lease, batch.held, retry=retry)

    async def _lease_due(self, now: datetime) -> list[Enrollment]:
        return await lease_due(now, self.batch_size)

    def _plan(
        self,
        enrollment: Enrollment,
        lead: Lead,
        received: set[str],
        deferred: dict[tuple[int, str], tuple[int, str, str, int]],
        now: datetime,
        changes: Changes,
        report: PassReport,
    ) -> Job | None:
        if lead.status != LeadStatus.ACTIVE:
            leave(enrollment, now, f"lead {lead.status}", changes)
            report.counts["stopped"] += 1
            return None
        if enrollment.stream_id not in self.catalog.streams:
            # The stream file was removed: keep the lead where it is and say so.
            log.error("lead %s is in unknown stream %r: left waiting", lead.email,
                      enrollment.stream_id)  # fmt: skip
            enrollment.next_due_at = now + LEASE * 6
            enrollment.lease = None
            changes.touch(enrollment)
            report.counts["orphaned"] += 1
            return None
        placement = place(self.catalog, enrollment.stream_id, enrollment.position, received)
        if (
            isinstance(placement, Next)
            and placement.stream.id == enrollment.stream_id
            and placement.step.index == enrollment.position
        ):
            # Checked when the email is about to go, not only when it was scheduled: an
            # overdue email (downtime, cron, resume, retry) waits for its window to open.
            opening = self._opening(lead, placement.step, now)
            if opening > now:
                enrollment.next_due_at = opening
                enrollment.lease = None
                changes.touch(enrollment)
                report.counts["outside_window"] += 1
                return None
        if enrollment.state == EnrollmentState.PAUSED:
            enrollment.state = EnrollmentState.ACTIVE
            changes.event(lead.id, EventKind.RESUMED, now, stream_id=enrollment.stream_id)
            log.info("lead %s: resumed in %s", lead.email, enrollment.stream_id)
        if not isinstance(placement, Next) or placement.stream.id != enrollment.stream_id:
            settle(enrollment, placement, lead=lead, now=now, rules=self.rules,
                   changes=changes, reason="exhausted")  # fmt: skip
            report.counts["moved" if isinstance(placement, Next) else "exhausted"] += 1
            return None
        if placement.step.index != enrollment.position:
            # The due step's content arrived some other way (e.g. a send whose outcome is
            # unknown): the next one waits its own wait from now, like after any email.
            settle(enrollment, placement, lead=lead, now=now, rules=self.rules,
                   changes=changes, reason="received")  # fmt: skip
            report.counts["skipped"] += 1
            return None
        step = placement.step
        retry = deferred.get((lead.id, step.content))
        if retry is not None:
            delivery_id, token, message_id, attempts = retry
            return Job(enrollment, lead, placement.stream, step, token, message_id,
                       attempts, delivery_id)  # fmt: skip
        token = new_delivery_token(now)
        return Job(enrollment, lead, placement.stream, step, token,
                   make_message_id(token, self.domain))  # fmt: skip

    def _opening(self, lead: Lead, step: Step, now: datetime) -> datetime:
        """``now`` when ``step`` may go to ``lead`` now, else its window's next opening
        (the step's window, else the default; the lead's zone; holidays)."""
        tz = lead_zone(lead.timezone, self.rules)
        return next_send_time(now, step.window or self.rules.window, tz, self.rules.holidays)

    def _render(
        self, jobs: list[Job], now: datetime, changes: Changes, report: PassReport
    ) -> list[Job]:
        sender = {"name": self.settings.sender.name, "address": self.settings.sender.address}
        ready = []
        for job in jobs:
            try:
                job.rendered = self.renderer.render(
                    job.variant.template if job.variant else job.step.template,
                    delivery_token=job.token,
                    lead=lead_view(job.lead),
                    company=company_view(job.lead),
                    sender=sender,
                    stream={"id": job.stream.id, "name": job.stream.name},
                    step={"index": job.step.index, "content": job.step.content},
                )
            except ConfigError as exc:
                # A template that passed validation failed on this lead's data: nothing
                # is claimed, the lead waits an hour, and the problem is logged and kept.
                log.error("lead %s: %s not rendered: %s", job.lead.email, job.step.content, exc)
                job.enrollment.next_due_at = now + LEASE * 6
                job.enrollment.lease = None
                changes.touch(job.enrollment)
                changes.event(job.lead.id, EventKind.SEND_FAILED, now, stream_id=job.stream.id,
                              content=job.step.content, error=str(exc))  # fmt: skip
                report.counts["render_failed"] += 1
                continue
            if job.variant is not None and job.variant.subject is not None:
                job.rendered = replace(job.rendered, subject=job.variant.subject)
            ready.append(job)
        return ready

    async def _claim(self, jobs: list[Job], now: datetime, report: PassReport) -> list[Job]:
        """Commit a delivery row for every job before any SMTP transaction starts."""
        new = [job for job in jobs if job.delivery_id is None]
        retries = [job for job in jobs if job.delivery_id is not None]
        async with in_transaction():
            if new:
                await insert_rows(
                    Delivery,
                    (
                        {
                            "lead_id": job.lead.id,
                            "content_id": job.step.content,
                            "stream_id": job.stream.id,
                            "step_index": job.step.index,
                            "token": job.token,
                            "message_id": job.message_id,
                            "subject": job.rendered.subject[:500] if job.rendered else "",
                            "variant": job.variant.id if job.variant else "",
                            "status": DeliveryStatus.CLAIMED,
                            "claimed_at": now,
                        }
                        for job in new
                    ),
                    ignore_conflicts=True,
                )
                ids = dict(
                    await Delivery.filter(token__in=[job.token for job in new]).values_list(
                        "token", "id"
                    )
                )
                for job in new:
                    job.delivery_id = ids.get(job.token)
            if retries:
                await Delivery.filter(
                    id__in=[job.delivery_id for job in retries], status=DeliveryStatus.DEFERRED
                ).update(status=DeliveryStatus.CLAIMED, claimed_at=now)
            claimed = [job for job in jobs if job.delivery_id is not None]
            links = (
                {
                    "delivery_id": job.delivery_id,
                    "index": link.index,
                    "url": link.url,
                    "tag": link.tag,
                }
                for job in new
                if job.delivery_id is not None and job.rendered is not None
                for link in job.rendered.links
            )
            await insert_rows(Link, links, ignore_conflicts=True)
        lost = len(jobs) - len(claimed)
        if lost:
            # Someone else holds (lead, content): the guarantee held; re-place next pass.
            report.counts["claim_conflict"] += lost
            for job in jobs:
                if job.delivery_id is None:
                    job.enrollment.next_due_at = now
        return claimed

    def _message(self, job: Job, now: datetime) -> bytes:
        assert job.rendered is not None
        sender = self.settings.sender
        return build_message_bytes(
            subject=job.rendered.subject,
            text=job.rendered.text,
            html=job.rendered.html,
            from_name=sender.name,
            from_addr=sender.address,
            to_name=" ".join(p for p in (job.lead.first_name, job.lead.last_name) if p),
            to_addr=job.lead.email,
            reply_to=sender.reply_to_for(job.token),
            message_id=job.message_id,
            date=now,
            unsubscribe_url=job.rendered.unsubscribe_url,
            unsubscribe_mailto=sender.unsubscribe_mailto,
        )

    async def _send_one(self, job: Job, now: datetime) -> None:
        try:
            message = self._message(job, now)
        except ValueError as exc:  # an address the message builder refuses
            job.outcome = PermanentSendError(f"unusable address: {exc}")
            return
        if self.limits is not None:  # waits for its slot, or is held back (not marked)
            until = await self.limits.admit(self.settings.sender.address, job.lead.email, now)
            if until is not None:
                job.outcome = HeldBack(f"held back by a send limit until {until}", until=until)
                return
        try:
            assert job.delivery_id is not None  # claimed
            started = await self.marks.start(job.delivery_id)
        except Exception as exc:  # the mark is not committed: do not send
            log.warning("lead %s: start mark not written (%s): retried later", job.lead.email,
                        exc)  # fmt: skip
            job.outcome = TransientSendError(f"not sent: start mark not written: {exc}")
            return
        if not started:
            job.outcome = ClaimLost("claim taken back before sending: not sent")
            return
        try:
            await self.transport.send(
                message,
                sender=self.settings.sender.bounce_for(job.token),
                recipients=[job.lead.email],
            )
        except SendError as exc:
            job.outcome = exc
        else:
            self.marks.done(job.delivery_id, now)
